# Reference fits for tests/test_meta_ml.py: random-effects meta-analysis and meta-regression
# (REML, ML and DerSimonian-Laird) by metafor's rma().
#
# Run from the repository root:  Rscript scripts/metafor_references.R
# Needs R with metafor and jsonlite (Debian bookworm: apt-get install r-cran-metafor r-cran-jsonlite).
# Writes tests/reference/metafor_<name>.json, one file per data set.
#
# Every fit is run twice and both are stored:
#   "default": the call as a user types it (metafor's Fisher scoring stops when tau^2 changes by
#              less than 1e-5 between iterations; the Q-profile interval's root search stops at
#              a tolerance of .Machine$double.eps^0.25 = 1.2e-4);
#   "tight":   the same call with control = list(threshold = 1e-12, maxiter = 10000) and the
#              interval's root search at tol = 1e-12 (and tau2.max = 1e6, so that no bound is
#              cut at metafor's search limit of max(100, 10 tau^2)): the converged optimum,
#              against which bayesmix is checked at a tighter tolerance.
# The calls are kept as strings and evaluated, so the recorded call is the one that ran.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

out_dir <- file.path("tests", "reference")
if (!dir.exists(out_dir)) stop("run from the repository root (tests/reference not found)")

env <- list(
  R = R.version.string,
  platform = R.version$platform,
  metafor = as.character(packageVersion("metafor")),
  metadat = as.character(packageVersion("metadat")),
  jsonlite = as.character(packageVersion("jsonlite")),
  source = "Debian bookworm r-cran-* packages"
)

tight_control <- "control = list(threshold = 1e-12, maxiter = 10000)"
tight_confint <- "control = list(tol = 1e-12, tau2.max = 1e6)"

one_fit <- function(model_call, confint_control) {
  res <- eval(parse(text = model_call))
  ci_call <- if (is.null(confint_control)) "confint(res)" else sprintf("confint(res, %s)", confint_control)
  ci_all <- eval(parse(text = ci_call))
  ci <- ci_all$random
  list(
    call = model_call,
    confint_call = ci_call,
    k = res$k,
    p = res$p,
    beta = list(
      names = I(rownames(res$beta)),  # I(): a JSON array even for one coefficient
      estimate = I(as.vector(res$beta)),
      se = I(res$se),
      zval = I(res$zval),
      pval = I(res$pval),
      ci_lb = I(res$ci.lb),
      ci_ub = I(res$ci.ub)
    ),
    tau2 = res$tau2,
    se_tau2 = res$se.tau2,
    tau = sqrt(res$tau2),
    QE = res$QE,
    QE_df = res$k - res$p,
    QEp = res$QEp,
    QM = res$QM,  # omnibus Wald test of the moderators (all coefficients but the intercept)
    QM_df = res$QMdf[1],
    QMp = res$QMp,
    I2 = res$I2,
    H2 = res$H2,
    logLik_ML = res$fit.stats["ll", "ML"],
    logLik_REML = res$fit.stats["ll", "REML"],
    logLik = as.numeric(logLik(res)),
    tau2_ci = list(lb = ci["tau^2", "ci.lb"], ub = ci["tau^2", "ci.ub"]),
    tau_ci = list(lb = ci["tau", "ci.lb"], ub = ci["tau", "ci.ub"]),
    # "<" or ">": the bound is at the search limit (tau2.min or tau2.max), not a root; ci_null: the
    # interval is the null set (even tau^2 = 0 gives a Q below its lower critical value)
    tau2_ci_signs = list(lb = ci_all$lb.sign, ub = ci_all$ub.sign),
    tau2_ci_null = ci_all$ci.null
  )
}

# `fit_args` is the part of the rma() call after the data arguments, e.g. "mods = ~ ablat, ".
reference <- function(name, dataset, provenance, preparation, dat, effect, variance, moderators, fit_args) {
  fits <- list()
  for (method in c("REML", "ML", "DL")) {
    base <- sprintf("rma(%s, %s, %sdata = dat, method = \"%s\"", effect, variance, fit_args, method)
    default_call <- paste0(base, ")")
    tight_call <- if (method == "DL") default_call else paste0(base, ", ", tight_control, ")")
    fits[[method]] <- list(
      default = one_fit(default_call, NULL),
      tight = one_fit(tight_call, tight_confint)
    )
  }
  vi <- if (grepl("^sei", variance)) dat$sei^2 else dat$vi
  data <- list(study = as.character(dat$study), yi = as.vector(dat$yi), vi = as.vector(vi), sei = sqrt(as.vector(vi)))
  for (m in moderators) data[[m]] <- dat[[m]]
  record <- list(
    dataset = dataset,
    provenance = provenance,
    software = "metafor",
    version = env$metafor,
    env = env,
    preparation = preparation,
    moderators = I(moderators),
    model = if (length(moderators)) "random-effects meta-regression" else "random-effects meta-analysis",
    data = data,
    fits = fits
  )
  path <- file.path(out_dir, sprintf("metafor_%s.json", name))
  writeLines(toJSON(record, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null"), path)
  message("wrote ", path)
}

# --- eight schools: coaching effects on SAT-V (Rubin 1981); REML tau^2 = 0 (the boundary) ---
prep <- "dat <- data.frame(study = LETTERS[1:8], yi = c(28, 8, -3, 7, -1, 1, 18, 12), sei = c(15, 10, 16, 11, 9, 11, 10, 18))"
eval(parse(text = prep))
reference(
  "eight_schools", "eight schools (SAT-V coaching experiments)",
  list(
    "Rubin, D. B. (1981). Estimation in parallel randomized experiments. Journal of Educational Statistics, 6(4), 377-401. https://doi.org/10.3102/10769986006004377",
    "Gelman, A., Carlin, J. B., Stern, H. S., Dunson, D. B., Vehtari, A., & Rubin, D. B. (2013). Bayesian Data Analysis (3rd ed.), section 5.5, table 5.2."
  ),
  prep, dat, "yi", "sei = sei", character(0), ""
)

# --- BCG vaccine trials: log risk ratios, intercept only and meta-regression on absolute latitude ---
prep <- paste(
  "dat <- escalc(measure = \"RR\", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg);",
  "dat$study <- paste(dat$author, dat$year)"
)
eval(parse(text = prep))
bcg_provenance <- list(
  "Colditz, G. A., Brewer, T. F., Berkey, C. S., Wilson, M. E., Burdick, E., Fineberg, H. V., & Mosteller, F. (1994). Efficacy of BCG vaccine in the prevention of tuberculosis: Meta-analysis of the published literature. JAMA, 271(9), 698-702. https://doi.org/10.1001/jama.1994.03510330076038",
  "Berkey, C. S., Hoaglin, D. C., Mosteller, F., & Colditz, G. A. (1995). A random-effects regression model for meta-analysis. Statistics in Medicine, 14(4), 395-411. https://doi.org/10.1002/sim.4780140406",
  "metadat::dat.bcg (the data as shipped with metafor)"
)
reference("bcg", "dat.bcg (BCG vaccine trials), log risk ratios", bcg_provenance, prep, dat, "yi", "vi", character(0), "")
reference(
  "bcg_ablat", "dat.bcg (BCG vaccine trials), log risk ratios on absolute latitude", bcg_provenance,
  prep, dat, "yi", "vi", "ablat", "mods = ~ ablat, "
)
reference(
  "bcg_ablat_year", "dat.bcg (BCG vaccine trials), log risk ratios on absolute latitude and year", bcg_provenance,
  prep, dat, "yi", "vi", c("ablat", "year"), "mods = ~ ablat + year, "
)

# --- passive smoking and lung cancer: log odds ratios of 37 studies (yi, vi as published) ---
prep <- "dat <- dat.hackshaw1998; dat$study <- paste(dat$author, dat$year)"
eval(parse(text = prep))
reference(
  "hackshaw1998", "dat.hackshaw1998 (environmental tobacco smoke and lung cancer), log odds ratios",
  list(
    "Hackshaw, A. K., Law, M. R., & Wald, N. J. (1997). The accumulated evidence on lung cancer and environmental tobacco smoke. BMJ, 315(7114), 980-988. https://doi.org/10.1136/bmj.315.7114.980",
    "Hackshaw, A. K. (1998). Lung cancer and passive smoking. Statistical Methods in Medical Research, 7(2), 119-136. https://doi.org/10.1177/096228029800700203",
    "metadat::dat.hackshaw1998"
  ),
  prep, dat, "yi", "vi", character(0), ""
)

# --- stroke rehabilitation: length of hospital stay, raw mean differences (9 trials) ---
prep <- paste(
  "dat <- escalc(measure = \"MD\", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,",
  "data = dat.normand1999); dat$study <- dat$source"
)
eval(parse(text = prep))
reference(
  "normand1999", "dat.normand1999 (specialist vs routine stroke care), mean differences in length of stay",
  list(
    "Normand, S. T. (1999). Meta-analysis: Formulating, evaluating, combining, and reporting. Statistics in Medicine, 18(3), 321-359. https://doi.org/10.1002/(sici)1097-0258(19990215)18:3<321::aid-sim28>3.0.co;2-p",
    "metadat::dat.normand1999"
  ),
  prep, dat, "yi", "vi", character(0), ""
)

# --- conscientiousness and medication adherence: Fisher-z correlations (16 studies) ---
prep <- paste(
  "dat <- escalc(measure = \"ZCOR\", ri = ri, ni = ni, data = dat.molloy2014);",
  "dat$study <- paste(dat$authors, dat$year)"
)
eval(parse(text = prep))
reference(
  "molloy2014", "dat.molloy2014 (conscientiousness and medication adherence), Fisher r-to-z correlations",
  list(
    "Molloy, G. J., O'Carroll, R. E., & Ferguson, E. (2014). Conscientiousness and medication adherence: A meta-analysis. Annals of Behavioral Medicine, 47(1), 92-101. https://doi.org/10.1007/s12160-013-9524-4",
    "metadat::dat.molloy2014"
  ),
  prep, dat, "yi", "vi", character(0), ""
)

# --- teacher expectancy and pupil IQ: standardized mean differences (19 studies), meta-regression on
#     the weeks of contact before the expectancy induction (as published: weeks, capped at 3) ---
prep <- paste(
  "dat <- dat.raudenbush1985; dat$weeks <- ifelse(dat$weeks > 3, 3, dat$weeks);",
  "dat$study <- paste(dat$author, dat$year)"
)
eval(parse(text = prep))
raudenbush_provenance <- list(
  "Raudenbush, S. W. (1984). Magnitude of teacher expectancy effects on pupil IQ as a function of the credibility of expectancy induction: A synthesis of findings from 18 experiments. Journal of Educational Psychology, 76(1), 85-97. https://doi.org/10.1037/0022-0663.76.1.85",
  "Raudenbush, S. W., & Bryk, A. S. (1985). Empirical Bayes meta-analysis. Journal of Educational Statistics, 10(2), 75-98. https://doi.org/10.3102/10769986010002075",
  "metadat::dat.raudenbush1985"
)
reference(
  "raudenbush1985", "dat.raudenbush1985 (teacher expectancy and pupil IQ), standardized mean differences",
  raudenbush_provenance, prep, dat, "yi", "vi", character(0), ""
)
reference(
  "raudenbush1985_weeks", "dat.raudenbush1985 (teacher expectancy and pupil IQ) on weeks of prior contact (capped at 3)",
  raudenbush_provenance, prep, dat, "yi", "vi", "weeks", "mods = ~ weeks, "
)
