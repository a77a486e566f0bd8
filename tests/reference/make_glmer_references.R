# Reference fits of generalized linear mixed models (binomial, Poisson) from lme4::glmer,
# for tests of bayesmix's Laplace-approximation maximum-likelihood fit.
#
# Run from anywhere:  Rscript tests/reference/make_glmer_references.R
# Needs R with lme4 and jsonlite (Debian bookworm: apt-get install r-cran-lme4 r-cran-jsonlite).
# Writes glmer_*.json next to this script (glmer_cbpp_tight_pirls.json: cbpp with a tight PIRLS
# tolerance, see (4)), data/{cbpp,grouseticks}.csv, and its own
# section of data/README.md (between the make_glmer_references.R markers).
#
# As in make_lme4_references.R, each data set is written to data/<name>.csv, read back,
# and every model is fitted to the data as read back; the calls are kept as strings and
# evaluated, so the recorded call is the one that ran.
#
# All fits use the Laplace approximation (nAGQ = 1, glmer's default). Each model is fitted
# with glmer's default control and refitted with tighter optimizer settings; both
# log-likelihoods are stored so a reader sees how far the optimum is pinned down (on flat
# likelihoods lme4's estimates move in the fifth digit while the log-likelihood does not:
# compare log-likelihoods tightly and estimates at about 1e-3). The Laplace log-likelihood
# is also recomputed at the reported estimates from glmer's own deviance function
# (devFunOnly = TRUE, a function of c(theta, beta)), as a check that logLik(m) is the
# Laplace value at (theta, beta) and nothing else.

suppressPackageStartupMessages({
  library(lme4)
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
  jsonlite = as.character(packageVersion("jsonlite")),
  source = "Debian bookworm r-cran-* packages"
)

# Evaluate a call string, keeping every R warning it raises (lme4 also stores some in optinfo).
fit_call <- function(call) {
  warns <- character(0)
  m <- withCallingHandlers(eval(parse(text = call), envir = globalenv()),
                           warning = function(w) {
                             warns <<- c(warns, conditionMessage(w))
                             invokeRestart("muffleWarning")
                           })
  list(model = m, warnings = warns)
}

# Laplace log-likelihood recomputed at the fitted (theta, beta) with glmer's deviance function.
laplace_recomputed <- function(call, m) {
  dcall <- sub("\\)$", ", devFunOnly = TRUE)", call)
  dev <- suppressWarnings(eval(parse(text = dcall), envir = globalenv()))
  val <- dev(c(unname(getME(m, "theta")), unname(fixef(m))))
  list(call = dcall, logLik = -0.5 * val,
       note = "-0.5 * glmer(..., devFunOnly = TRUE)(c(theta, beta)) at the reported estimates")
}

glmer_summary <- function(fit, call) {
  m <- fit$model
  vc <- as.data.frame(VarCorr(m))
  re <- as.data.frame(ranef(m, condVar = TRUE))
  ll <- logLik(m)
  fam <- family(m)
  vcov_rx <- suppressWarnings(as.matrix(vcov(m, use.hessian = FALSE)))
  list(
    call = call,
    family = fam$family,
    link = fam$link,
    nAGQ = m@devcomp$dims[["nAGQ"]],
    nobs = nobs(m),
    logLik = as.numeric(ll),
    df = attr(ll, "df"),
    deviance = deviance(m),
    deviance_note = paste("deviance(m) for a glmer fit is lme4's conditional deviance (sum of squared deviance",
                          "residuals at the conditional modes), not -2 * logLik; minus_two_logLik is the",
                          "Laplace criterion that was minimised"),
    minus_two_logLik = -2 * as.numeric(ll),
    AIC = AIC(m),
    fixef = list(
      names = names(fixef(m)),
      estimate = unname(fixef(m)),
      se = unname(sqrt(diag(as.matrix(vcov(m))))),
      vcov = unname(as.matrix(vcov(m))),
      vcov_note = paste("se and vcov are vcov(m), lme4 1.1-31's default for glmer (use.hessian = TRUE): the",
                        "beta block of the inverse of a finite-difference Hessian of the Laplace deviance in",
                        "(theta, beta), times 2. vcov_rx is vcov(m, use.hessian = FALSE): from the PIRLS",
                        "factor RX at the estimates, theta held fixed (lme4 warns, silenced here, that the two",
                        "differ by > 1e-4; they differ by a few per cent in the SEs)"),
      se_rx = unname(sqrt(diag(vcov_rx))),
      vcov_rx = unname(vcov_rx)
    ),
    varcorr = list(grp = vc$grp, var1 = vc$var1, var2 = vc$var2, vcov = vc$vcov, sdcor = vc$sdcor),
    theta = list(names = names(getME(m, "theta")), values = unname(getME(m, "theta"))),
    ranef = list(
      grpvar = as.character(re$grpvar), term = as.character(re$term), grp = as.character(re$grp),
      condval = re$condval, condsd = re$condsd
    ),
    singular = isSingular(m),
    optimizer = m@optinfo$optimizer,
    optimizer_note = paste("glmer's default control runs two stages, bobyqa with nAGQ = 0 (beta in PIRLS)",
                           "then Nelder_Mead over (theta, beta) with the Laplace deviance; optimizer,",
                           "feval and the messages are those of the last stage"),
    optimizer_control = m@optinfo$control,
    feval = m@optinfo$feval,
    optimizer_message = m@optinfo$message,
    conv_code = m@optinfo$conv$opt,
    conv_messages = m@optinfo$conv$lme4$messages,
    lme4_warnings = m@optinfo$warnings,
    r_warnings = fit$warnings,
    laplace_recomputed = laplace_recomputed(call, m)
  )
}

refit_summary <- function(fit, call) {
  m <- fit$model
  list(
    call = call,
    logLik = as.numeric(logLik(m)),
    fixef = list(names = names(fixef(m)), estimate = unname(fixef(m))),
    theta = list(names = names(getME(m, "theta")), values = unname(getME(m, "theta"))),
    optimizer = m@optinfo$optimizer,
    feval = m@optinfo$feval,
    conv_messages = m@optinfo$conv$lme4$messages,
    lme4_warnings = m@optinfo$warnings,
    r_warnings = fit$warnings
  )
}

tight_control <- 'glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))'

write_reference <- function(name, dataset, csv, data_prep, call, note = NULL, published = NULL,
                            refit_call = NULL) {
  if (is.null(refit_call)) refit_call <- sub("\\)$", sprintf(", nAGQ = 1, control = %s)", tight_control), call)
  fit <- fit_call(call)
  refit <- fit_call(refit_call)
  main <- glmer_summary(fit, call)
  ref <- refit_summary(refit, refit_call)
  out <- list(
    source = "tests/reference/make_glmer_references.R",
    software = "R: lme4::glmer, Laplace approximation (nAGQ = 1), maximum likelihood",
    version = versions,
    dataset = dataset,
    data = list(file = file.path("data", csv), md5 = unname(tools::md5sum(file.path(here, "data", csv))),
                prep = data_prep),
    call = call,
    note = note,
    published = published,
    lme4 = main,
    refit_tight = ref,
    stability = list(
      logLik_default = main$logLik,
      logLik_tight = ref$logLik,
      logLik_abs_diff = abs(main$logLik - ref$logLik),
      logLik_laplace_recomputed = main$laplace_recomputed$logLik,
      fixef_max_rel_diff = max(abs(main$fixef$estimate - ref$fixef$estimate) /
                                 pmax(abs(main$fixef$estimate), 1e-8)),
      theta_max_abs_diff = max(abs(main$theta$values - ref$theta$values))
    )
  )
  write_json(out, file.path(here, paste0(name, ".json")), digits = NA, auto_unbox = TRUE, pretty = TRUE,
             na = "null", null = "null")
  out
}

results <- list()

# (1) binomial, logit link: lme4::cbpp (contagious bovine pleuropneumonia), glmer's own example.
write.csv(data.frame(herd = as.character(cbpp$herd), incidence = cbpp$incidence, size = cbpp$size,
                     period = as.character(cbpp$period)),
          file.path(here, "data", "cbpp.csv"), row.names = FALSE)
cbpp_csv <- read.csv(file.path(here, "data", "cbpp.csv"), colClasses = c("character", "numeric", "numeric", "character"))
cbpp_csv$period <- factor(cbpp_csv$period, levels = c("1", "2", "3", "4"))
cbpp_prep <- paste("read.csv(colClasses = c('character', 'numeric', 'numeric', 'character'));",
                   "period = factor(levels = 1, 2, 3, 4); herd stays character (grouping only);",
                   "treatment contrasts (R default for unordered factors)")
results$glmer_cbpp <- write_reference(
  "glmer_cbpp", "lme4::cbpp", "cbpp.csv", cbpp_prep,
  "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), family = binomial, data = cbpp_csv)",
  published = list(logLik = -92.0266,
                   note = "reference logLik for lme4's ?glmer example gm1 on cbpp, 4 decimals (summary() prints -92.0)"))

# (2) Poisson, log link: lme4::grouseticks (Elston et al. 2001), two crossed-ish intercepts.
# scale(HEIGHT) is evaluated by R inside the formula: (HEIGHT - mean(HEIGHT)) / sd(HEIGHT),
# sd with divisor n - 1, over all 403 rows; the mean and sd are stored in "prep".
write.csv(data.frame(INDEX = as.character(grouseticks$INDEX), TICKS = grouseticks$TICKS,
                     BROOD = as.character(grouseticks$BROOD), HEIGHT = grouseticks$HEIGHT,
                     YEAR = as.character(grouseticks$YEAR), LOCATION = as.character(grouseticks$LOCATION)),
          file.path(here, "data", "grouseticks.csv"), row.names = FALSE)
grouse <- read.csv(file.path(here, "data", "grouseticks.csv"),
                   colClasses = c("character", "numeric", "character", "numeric", "character", "character"))
grouse$YEAR <- factor(grouse$YEAR, levels = c("95", "96", "97"))
grouse_prep <- paste0(
  "read.csv(colClasses = c('character', 'numeric', 'character', 'numeric', 'character', 'character'));",
  " YEAR = factor(levels = 95, 96, 97); BROOD, LOCATION stay character (grouping only);",
  " treatment contrasts; scale(HEIGHT) = (HEIGHT - ", format(mean(grouse$HEIGHT), digits = 17),
  ") / ", format(sd(grouse$HEIGHT), digits = 17), " (mean and n-1 sd of HEIGHT over all rows)")
grouse_full <- "glmer(TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION), family = poisson, data = grouse)"
grouse_simple <- "glmer(TICKS ~ YEAR + (1 | LOCATION), family = poisson, data = grouse)"
probe <- fit_call(grouse_full)
clean <- length(probe$warnings) == 0 && length(probe$model@optinfo$conv$lme4$messages) == 0 &&
  !isSingular(probe$model)
if (clean) {
  results$glmer_grouseticks <- write_reference(
    "glmer_grouseticks", "lme4::grouseticks", "grouseticks.csv", grouse_prep, grouse_full,
    note = "the full model (BROOD and LOCATION intercepts) converged without warnings; the fallback TICKS ~ YEAR + (1 | LOCATION) was not needed")
} else {
  results$glmer_grouseticks <- write_reference(
    "glmer_grouseticks", "lme4::grouseticks", "grouseticks.csv", grouse_prep, grouse_simple,
    note = paste("fallback model: the full model", grouse_full, "did not converge cleanly:",
                 paste(c(probe$warnings, probe$model@optinfo$conv$lme4$messages), collapse = "; ")))
}

# (3) binomial, probit link: cbpp again, the same data and linear predictor.
results$glmer_cbpp_probit <- write_reference(
  "glmer_cbpp_probit", "lme4::cbpp", "cbpp.csv", cbpp_prep,
  "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), family = binomial(link = \"probit\"), data = cbpp_csv)")

# (4) binomial, logit link, with a tight PIRLS tolerance: cbpp as in (1), glmerControl(tolPwrss = 1e-10).
# With the default tolPwrss = 1e-7, glmer's Laplace deviance uses the weights of the PIRLS iterate
# before the converged mode (the log-determinant is then off by ~5e-4 on cbpp), which moves the
# estimates by ~4e-4 and the Hessian-based SEs by ~1%; the tight tolerance removes that.
cbpp_tight <- paste("glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), family = binomial,",
                    "data = cbpp_csv, control = glmerControl(tolPwrss = 1e-10))")
results$glmer_cbpp_tight_pirls <- write_reference(
  "glmer_cbpp_tight_pirls", "lme4::cbpp", "cbpp.csv", cbpp_prep, cbpp_tight,
  note = paste("glmer_cbpp.json's model with a tight PIRLS tolerance (default tolPwrss = 1e-7); the",
               "refit also uses bobyqa with maxfun = 1e5"),
  refit_call = sub("tolPwrss = 1e-10\\)\\)$",
                   "tolPwrss = 1e-10, optimizer = \"bobyqa\", optCtrl = list(maxfun = 1e5)))", cbpp_tight))

for (nm in names(results)) {
  s <- results[[nm]]$stability
  cat(sprintf("%-20s logLik %.10f  tight %.10f  recomputed %.10f  fixef rel diff %.2e  warnings: %s\n",
              nm, s$logLik_default, s$logLik_tight, s$logLik_laplace_recomputed, s$fixef_max_rel_diff,
              paste(c(results[[nm]]$lme4$r_warnings, results[[nm]]$lme4$conv_messages,
                      results[[nm]]$refit_tight$r_warnings, results[[nm]]$refit_tight$conv_messages),
                    collapse = "; ")))
}

# data/README.md: this script owns the section between the markers below (make_lme4_references.R
# rewrites the whole file; run this script after it).
begin <- "<!-- make_glmer_references.R: begin -->"
end <- "<!-- make_glmer_references.R: end -->"
section <- c(
  begin,
  "",
  "## GLMM reference data (written by make_glmer_references.R)",
  "",
  sprintf("Written with %s, lme4 %s (%s) by `write.csv(row.names = FALSE)`; all values are integers, so they round-trip exactly.",
          versions$R, versions$lme4, versions$source),
  "",
  "| file | dataset | columns | md5 |",
  "|---|---|---|---|",
  sprintf("| cbpp.csv | lme4::cbpp | herd, incidence, size, period (herd and period as text) | %s |",
          unname(tools::md5sum(file.path(here, "data", "cbpp.csv")))),
  sprintf("| grouseticks.csv | lme4::grouseticks | INDEX, TICKS, BROOD, HEIGHT, YEAR, LOCATION (INDEX, BROOD, YEAR, LOCATION as text) | %s |",
          unname(tools::md5sum(file.path(here, "data", "grouseticks.csv")))),
  "",
  "Row order as in lme4. grouseticks.csv drops lme4's cHEIGHT (HEIGHT centred at its mean, a derived column).",
  "",
  "glmer_cbpp_tight_pirls.json refits the cbpp logit model of glmer_cbpp.json on the same cbpp.csv with",
  "`glmerControl(tolPwrss = 1e-10)` (lme4's default PIRLS tolerance 1e-7 shifts its Laplace deviance by ~5e-4 there).",
  "",
  end
)
readme <- file.path(here, "data", "README.md")
old <- if (file.exists(readme)) readLines(readme) else character(0)
b <- match(begin, old); e <- match(end, old)
new <- if (!is.na(b) && !is.na(e)) c(old[seq_len(b - 1)], section, old[-seq_len(e)]) else c(old, "", section)
writeLines(new, readme)
