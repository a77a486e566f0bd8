# Reference fits for tests/test_lmm_reference.py.
#
# Run from anywhere:  Rscript tests/reference/make_lme4_references.R
# Needs R with lme4, glmmTMB and jsonlite (Debian bookworm: apt-get install r-cran-lme4 r-cran-glmmtmb).
#
# Each data set is written to data/<name>.csv, read back, and every model is fitted to the
# data as read back, so the stored numbers belong to exactly the stored csv. The model
# calls are kept as strings and evaluated, so the recorded call is the one that ran.
# lme4 gives the estimates, log-likelihoods, vcov and conditional modes; glmmTMB (which
# reports standard errors of its variance parameters: log SDs, a correlation parameter
# t with corr = t / sqrt(1 + t^2), and log(sigma^2)) gives the variance-parameter
# standard errors, moved to the SD / correlation / sigma scale by the delta method.

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(jsonlite)
})

file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
here <- if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg))) else "."
dir.create(file.path(here, "data"), showWarnings = FALSE)

versions <- list(
  R = R.version.string,
  platform = R.version$platform,
  lme4 = as.character(packageVersion("lme4")),
  Matrix = as.character(packageVersion("Matrix")),
  glmmTMB = as.character(packageVersion("glmmTMB")),
  TMB = as.character(packageVersion("TMB")),
  jsonlite = as.character(packageVersion("jsonlite")),
  source = "Debian bookworm r-cran-* packages"
)

lme4_summary <- function(m, call) {
  vc <- as.data.frame(VarCorr(m))
  re <- as.data.frame(ranef(m, condVar = TRUE))
  ll <- logLik(m)
  list(
    call = call,
    REML = isREML(m),
    nobs = nobs(m),
    logLik = as.numeric(ll),
    df = attr(ll, "df"),
    criterion = if (isREML(m)) REMLcrit(m) else deviance(m),
    fixef = list(
      names = names(fixef(m)),
      estimate = unname(fixef(m)),
      se = unname(sqrt(diag(as.matrix(vcov(m))))),
      vcov = unname(as.matrix(vcov(m)))
    ),
    varcorr = list(grp = vc$grp, var1 = vc$var1, var2 = vc$var2, vcov = vc$vcov, sdcor = vc$sdcor),
    residual_sd = sigma(m),
    theta = list(names = names(getME(m, "theta")), values = unname(getME(m, "theta"))),
    ranef = list(
      grpvar = as.character(re$grpvar), term = as.character(re$term), grp = as.character(re$grp),
      condval = re$condval, condsd = re$condsd
    ),
    optimizer = m@optinfo$optimizer,
    conv_messages = m@optinfo$conv$lme4$messages,
    warnings = m@optinfo$warnings
  )
}

glmmtmb_summary <- function(m, call) {
  s <- summary(m$sdr, "fixed")
  th <- s[rownames(s) == "theta", , drop = FALSE]
  bd <- s[rownames(s) == "betad", ]
  rs <- m$modelInfo$reStruc$condReStruc
  vc <- VarCorr(m)$cond
  rows <- data.frame()
  k <- 1
  for (i in seq_along(rs)) {
    q <- rs[[i]]$blockSize
    nt <- rs[[i]]$blockNumTheta
    sds <- exp(th[k:(k + q - 1), 1])
    stopifnot(isTRUE(all.equal(unname(sds), unname(attr(vc[[i]], "stddev")))))
    terms <- names(attr(vc[[i]], "stddev"))
    rows <- rbind(rows, data.frame(grp = names(vc)[i], var1 = terms, var2 = NA,
                                   estimate = sds, std_error = sds * th[k:(k + q - 1), 2]))
    if (nt > q) {
      stopifnot(q == 2, nt == 3)
      t <- th[k + q, 1]
      rows <- rbind(rows, data.frame(grp = names(vc)[i], var1 = terms[1], var2 = terms[2],
                                     estimate = t / sqrt(1 + t^2), std_error = th[k + q, 2] * (1 + t^2)^-1.5))
    }
    k <- k + nt
  }
  sig <- exp(bd[[1]] / 2)
  stopifnot(isTRUE(all.equal(sig, sigma(m))))
  rows <- rbind(rows, data.frame(grp = "Residual", var1 = NA, var2 = NA, estimate = sig, std_error = sig * bd[[2]] / 2))
  list(
    call = call,
    REML = m$modelInfo$REML,
    logLik = as.numeric(logLik(m)),
    convergence = m$fit$convergence,
    pdHess = m$sdr$pdHess,
    fixef = list(names = names(fixef(m)$cond), estimate = unname(fixef(m)$cond),
                 se = unname(sqrt(diag(vcov(m)$cond)))),
    variance_se = as.list(rows),
    note = paste("variance_se: glmmTMB sdreport standard errors of log SD, t (corr = t/sqrt(1+t^2))",
                 "and log(sigma^2), moved to SD, corr and sigma by the delta method")
  )
}

write_reference <- function(name, dataset, csv, data_prep, calls, data) {
  out <- list(
    source = "tests/reference/make_lme4_references.R",
    software = "R: lme4::lmer (estimates, logLik, vcov, conditional modes); glmmTMB (variance-parameter SEs)",
    version = versions,
    dataset = dataset,
    data = list(file = file.path("data", csv), md5 = unname(tools::md5sum(file.path(here, "data", csv))),
                prep = data_prep),
    call = unname(unlist(calls))
  )
  for (key in names(calls)) {
    m <- eval(parse(text = calls[[key]]))
    out[[key]] <- if (startsWith(key, "lme4")) lme4_summary(m, calls[[key]]) else glmmtmb_summary(m, calls[[key]])
  }
  write_json(out, file.path(here, paste0(name, ".json")), digits = NA, auto_unbox = TRUE, pretty = TRUE,
             na = "null")
}

both <- function(lme4_rhs, tmb_rhs, data, reml = c(TRUE, FALSE)) {
  calls <- list()
  for (r in reml) {
    tag <- if (r) "REML" else "ML"
    calls[[paste0("lme4_", tag)]] <- sprintf("lmer(%s, data = %s, REML = %s)", lme4_rhs, data, r)
    if (!is.null(tmb_rhs)) calls[[paste0("glmmTMB_", tag)]] <- sprintf("glmmTMB(%s, data = %s, REML = %s)", tmb_rhs, data, r)
  }
  calls
}

# (a) crossed: Penicillin
write.csv(Penicillin[, c("diameter", "plate", "sample")], file.path(here, "data", "penicillin.csv"), row.names = FALSE)
penicillin <- read.csv(file.path(here, "data", "penicillin.csv"), colClasses = c("numeric", "character", "character"))
f <- "diameter ~ 1 + (1 | plate) + (1 | sample)"
write_reference("lme4_penicillin", "lme4::Penicillin", "penicillin.csv",
                "read.csv(colClasses = c('numeric', 'character', 'character'))", both(f, f, "penicillin"))

# (b) nested: Pastes
write.csv(Pastes[, c("strength", "batch", "cask")], file.path(here, "data", "pastes.csv"), row.names = FALSE)
pastes <- read.csv(file.path(here, "data", "pastes.csv"), colClasses = c("numeric", "character", "character"))
f <- "strength ~ 1 + (1 | batch/cask)"
write_reference("lme4_pastes", "lme4::Pastes", "pastes.csv",
                "read.csv(colClasses = c('numeric', 'character', 'character'))", both(f, f, "pastes"))

# (c) uncorrelated slopes: sleepstudy (the same file as bayesmix/datasets/data/sleepstudy.csv)
write.csv(sleepstudy, file.path(here, "data", "sleepstudy.csv"), row.names = FALSE)
sleep <- read.csv(file.path(here, "data", "sleepstudy.csv"), colClasses = c("numeric", "numeric", "character"))
write_reference("lme4_sleepstudy_uncorrelated", "lme4::sleepstudy", "sleepstudy.csv",
                "read.csv(colClasses = c('numeric', 'numeric', 'character'))",
                both("Reaction ~ Days + (Days || Subject)", "Reaction ~ Days + diag(Days | Subject)", "sleep"))
# correlated slopes, for the variance-parameter standard errors (lme4 numbers as in lme4_sleepstudy.json)
f <- "Reaction ~ Days + (Days | Subject)"
write_reference("lme4_sleepstudy_correlated", "lme4::sleepstudy", "sleepstudy.csv",
                "read.csv(colClasses = c('numeric', 'numeric', 'character'))", both(f, f, "sleep"))

# (e) one grouping factor with a correlated block and an extra independent term
sleep$Days2 <- (sleep$Days - 4.5)^2
write_reference("lme4_sleepstudy_mixed_block", "lme4::sleepstudy", "sleepstudy.csv",
                "read.csv(colClasses = c('numeric', 'numeric', 'character')); Days2 = (Days - 4.5)^2",
                both("Reaction ~ Days + (Days | Subject) + (0 + Days2 | Subject)",
                     "Reaction ~ Days + (Days | Subject) + (0 + Days2 | Subject)", "sleep"))

# (d) categorical fixed effects with an interaction: cake, temperature as an unordered factor
# (lme4's cake has it ordered, which R would code with polynomial contrasts).
write.csv(data.frame(replicate = as.character(cake$replicate), recipe = as.character(cake$recipe),
                     temperature = as.character(cake$temperature), angle = cake$angle),
          file.path(here, "data", "cake.csv"), row.names = FALSE)
cake_csv <- read.csv(file.path(here, "data", "cake.csv"), colClasses = c("character", "character", "character", "numeric"))
cake_csv$temperature <- factor(cake_csv$temperature, levels = c("175", "185", "195", "205", "215", "225"))
cake_csv$recipe <- factor(cake_csv$recipe, levels = c("A", "B", "C"))
f <- "angle ~ recipe * temperature + (1 | recipe:replicate)"
write_reference("lme4_cake", "lme4::cake", "cake.csv",
                paste("read.csv(colClasses = c('character', 'character', 'character', 'numeric'));",
                      "temperature = factor(levels = 175..225), recipe = factor(levels = A, B, C);",
                      "treatment contrasts (R default for unordered factors)"),
                both(f, f, "cake_csv", reml = TRUE))

# (f) a singular fit: data/singular.csv is simulated (not from R), see data/README.md;
# no intercept variation between groups, so sd((Intercept)|g) = 0 and the correlation is undefined.
singular <- read.csv(file.path(here, "data", "singular.csv"), colClasses = c("numeric", "numeric", "character"))
write_reference("lme4_singular", "simulated (tests/reference/data/README.md)", "singular.csv",
                "read.csv(colClasses = c('numeric', 'numeric', 'character'))",
                both("y ~ x + (x | g)", NULL, "singular"))

writeLines(c(
  "# Reference data (written by make_lme4_references.R; provenance below)",
  "",
  sprintf("Written with %s, lme4 %s (%s) by `write.csv(row.names = FALSE)`.", versions$R, versions$lme4, versions$source),
  "",
  "| file | dataset | columns | md5 |",
  "|---|---|---|---|",
  sprintf("| %s | %s | %s | %s |",
          c("penicillin.csv", "pastes.csv", "sleepstudy.csv", "cake.csv"),
          c("lme4::Penicillin", "lme4::Pastes", "lme4::sleepstudy", "lme4::cake"),
          c("diameter, plate, sample", "strength, batch, cask", "Reaction, Days, Subject",
            "replicate, recipe, temperature (as text), angle"),
          unname(tools::md5sum(file.path(here, "data", c("penicillin.csv", "pastes.csv", "sleepstudy.csv", "cake.csv"))))),
  sprintf("| singular.csv | simulated with numpy (below) | y, x, g | %s |", unname(tools::md5sum(file.path(here, "data", "singular.csv")))),
  "",
  "sleepstudy.csv is byte-identical to bayesmix/datasets/data/sleepstudy.csv (the tests load that one).",
  "",
  "singular.csv was written by numpy 2 / pandas `to_csv(index=False)` (floats round-trip exactly):",
  "`rng = np.random.default_rng(7); g = np.repeat(np.arange(8), 6); x = np.tile(np.linspace(-1, 1, 6), 8);`",
  "`slopes = rng.normal(size=8); e = rng.normal(scale=0.3, size=48); e -= (np.bincount(g, e) / 6)[g];`",
  "`y = 2.0 + (0.5 + slopes[g]) * x + e`: the residuals are centred within each group, so the groups",
  "have identical means and the (RE)ML estimate of the intercept SD is exactly 0."
), file.path(here, "data", "README.md"))
