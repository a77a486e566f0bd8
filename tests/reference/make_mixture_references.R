# Maximum-likelihood reference fits of finite mixture models, for the mixture tests.
#
# Run from anywhere:  Rscript tests/reference/make_mixture_references.R
# Needs R with mclust, flexmix, MASS and jsonlite
# (Debian bookworm: apt-get install r-cran-mclust r-cran-flexmix r-cran-jsonlite).
#
# Writes mclust_galaxies.json, mclust_faithful.json, flexmix_npreg_gaussian.json,
# flexmix_npreg_poisson.json and flexmix_npreg_concomitant.json next to this script,
# the data to data/{galaxies,faithful_waiting,npreg}.csv, and a section of data/README.md.
#
# As in make_lme4_references.R, every data set is written to data/<name>.csv, read back,
# and every model is fitted to the data as read back; the package calls are kept as
# strings and evaluated, so the recorded call is the one that ran.
#
# What is stored for each model:
#   * the package's own answer (mclust::Mclust, flexmix::stepFlexmix) and its log-likelihood;
#   * that answer "polished": the log-likelihood is maximised further with stats::optim
#     (BFGS, analytic gradient, reltol 1e-14), then a few Newton steps, on an unconstrained
#     parametrisation (below).  EM stops at a tolerance, and flexmix's gaussian M-step is not
#     the ML step (see notes in the JSON), so the polished value is the reference;
#   * many other starts (other mclust initialisations, single flexmix runs with different
#     seeds, random starts handed straight to optim), all polished the same way; the best
#     proper maximum is "loglik"/"estimates", the others are listed under "local_maxima";
#   * the log-likelihood recomputed at the polished estimates by separate, plain code
#     (dnorm / dpois on the stored, named estimates).
#
# Unconstrained parametrisation ("theta" in the JSON), components in the stored order:
#   regression coefficients of component 1, then of component 2, ...  (a univariate normal
#   mixture is a regression on an intercept only, so these are the means);
#   then, gaussian families only, log(sigma_k) (sigma = standard deviation);
#   then the multinomial-logit coefficients of the class probabilities, class 1 the base:
#   log(p_k / p_1) = z' gamma_k for k = 2..G, gamma_1 = 0, where z = (1) without a
#   concomitant model and z = (1, x) with FLXPmultinom(~ x).

suppressPackageStartupMessages({
  library(mclust)
  library(flexmix)
  library(MASS)
  library(jsonlite)
})

file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
here <- if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg))) else "."
dir.create(file.path(here, "data"), showWarnings = FALSE)

versions <- list(
  R = R.version.string,
  platform = R.version$platform,
  mclust = as.character(packageVersion("mclust")),
  flexmix = as.character(packageVersion("flexmix")),
  modeltools = as.character(packageVersion("modeltools")),
  nnet = as.character(packageVersion("nnet")),
  MASS = as.character(packageVersion("MASS")),
  stats = as.character(packageVersion("stats")),
  jsonlite = as.character(packageVersion("jsonlite")),
  source = "Debian bookworm r-cran-* packages"
)

# Thresholds used to sort the polished solutions (also written into every JSON).
criteria <- list(
  same_loglik = 1e-6,        # two solutions are the same maximum if their logliks differ by less ...
  same_theta = 1e-4,         # ... and their theta (in the stored component order) by less than this
  max_abs_gradient = 1e-4,   # a proper maximum: every |d loglik / d theta| below this, and
                             # the Hessian of the loglik in theta negative definite
  sigma_floor = 1e-4,        # degenerate: some sigma_k < sigma_floor * sd(y) (the likelihood is
                             # unbounded as a component collapses onto one value)
  prior_floor = 1e-6,        # boundary: some class probability (averaged over observations) below this,
  logit_max = 30,            # or some |log(p_ik / p_i1)| above this (the multinomial-logit coefficients
                             # running off to infinity: classes separated by a hard threshold in x)
  spurious_sd_ratio = 0.05   # a proper maximum is flagged spurious when min_k sigma_k / max_k sigma_k is
                             # below this (Hathaway's ratio); the reference is the best non-spurious one
)

# ---------------------------------------------------------------------------------------
# Data: write with the shortest decimal that reads back to the same double, then read back.

shortest <- function(v) {
  vapply(v, function(x) {
    for (d in 15:17) {
      s <- formatC(x, digits = d, format = "g")
      if (as.numeric(s) == x) break
    }
    trimws(s)
  }, "")
}

write_exact_csv <- function(df, name) {
  out <- as.data.frame(lapply(df, function(col) if (is.double(col)) shortest(col) else col))
  write.csv(out, file.path(here, "data", name), row.names = FALSE, quote = FALSE)
  back <- read.csv(file.path(here, "data", name))
  for (v in names(df)) stopifnot(isTRUE(all(back[[v]] == df[[v]])))  # exact round trip
  back
}

md5 <- function(name) unname(tools::md5sum(file.path(here, "data", name)))

galaxies_csv <- write_exact_csv(data.frame(velocity = MASS::galaxies / 1000), "galaxies.csv")
faithful_csv <- write_exact_csv(data.frame(waiting = as.numeric(datasets::faithful$waiting)),
                                "faithful_waiting.csv")
data("NPreg", package = "flexmix")
npreg_csv <- write_exact_csv(NPreg[, c("x", "yn", "yp", "class")], "npreg.csv")

# The names the calls below refer to: the data as read back from the csv files.
galaxies <- galaxies_csv$velocity
waiting <- faithful_csv$waiting
npreg <- npreg_csv

# ---------------------------------------------------------------------------------------
# A mixture of G regressions (gaussian with identity link, or poisson with log link) with
# multinomial-logit class probabilities: p_ik = softmax_k(z_i' gamma_k), gamma_1 = 0.

mixture_model <- function(family, y, X, Z, G) {
  list(family = family, y = y, X = X, Z = Z, G = G, n = length(y), p = ncol(X), q = ncol(Z),
       sd_y = sd(y))
}

unpack <- function(mod, theta) {
  p <- mod$p; G <- mod$G; q <- mod$q
  B <- matrix(theta[seq_len(p * G)], p, G)
  i <- p * G
  sigma <- NULL
  if (mod$family == "gaussian") {
    sigma <- exp(theta[i + seq_len(G)])
    i <- i + G
  }
  Gam <- matrix(theta[i + seq_len(q * (G - 1))], q, G - 1)
  list(B = B, sigma = sigma, Gam = Gam)
}

pack <- function(mod, B, sigma, Gam) {
  c(as.vector(B), if (mod$family == "gaussian") log(sigma), as.vector(Gam))
}

theta_names <- function(mod, coef_names, conc_names) {
  k <- seq_len(mod$G)
  c(paste0(rep(coef_names, mod$G), "[", rep(k, each = mod$p), "]"),
    if (mod$family == "gaussian") paste0("log_sigma[", k, "]"),
    paste0("gamma_", rep(conc_names, mod$G - 1), "[", rep(k[-1], each = mod$q), "]"))
}

row_logsumexp <- function(A) {
  m <- apply(A, 1, max)
  m + log(rowSums(exp(A - m)))
}

# Log-likelihood, posterior class probabilities tau and prior class probabilities.
evaluate <- function(mod, theta) {
  par <- unpack(mod, theta)
  n <- mod$n; G <- mod$G
  eta <- mod$Z %*% cbind(0, par$Gam)
  log_prior <- eta - row_logsumexp(eta)
  M <- mod$X %*% par$B
  logf <- if (mod$family == "gaussian") {
    matrix(dnorm(mod$y, mean = M, sd = rep(par$sigma, each = n), log = TRUE), n, G)
  } else {
    matrix(dpois(mod$y, lambda = exp(M), log = TRUE), n, G)
  }
  lj <- log_prior + logf
  lli <- row_logsumexp(lj)
  list(loglik = sum(lli), tau = exp(lj - lli), prior = exp(log_prior), M = M, par = par)
}

# Analytic gradient of the log-likelihood in theta (the complete-data score weighted by tau).
gradient <- function(mod, theta, ev = evaluate(mod, theta)) {
  G <- mod$G; tau <- ev$tau; par <- ev$par
  gB <- matrix(0, mod$p, G)
  gls <- NULL
  if (mod$family == "gaussian") {
    gls <- numeric(G)
    for (k in seq_len(G)) {
      r <- mod$y - ev$M[, k]
      gB[, k] <- crossprod(mod$X, tau[, k] * r) / par$sigma[k]^2
      gls[k] <- sum(tau[, k] * ((r / par$sigma[k])^2 - 1))
    }
  } else {
    for (k in seq_len(G)) gB[, k] <- crossprod(mod$X, tau[, k] * (mod$y - exp(ev$M[, k])))
  }
  gGam <- crossprod(mod$Z, tau[, -1, drop = FALSE] - ev$prior[, -1, drop = FALSE])
  c(as.vector(gB), gls, as.vector(gGam))
}

# Hessian of the log-likelihood by central differences of the analytic gradient.
hessian <- function(mod, theta) {
  d <- length(theta)
  H <- matrix(0, d, d)
  for (j in seq_len(d)) {
    h <- 1e-5 * max(1, abs(theta[j]))
    e <- replace(numeric(d), j, h)
    H[, j] <- (gradient(mod, theta + e) - gradient(mod, theta - e)) / (2 * h)
  }
  (H + t(H)) / 2
}

# log-likelihood, or NA where theta is outside the region we accept (a collapsing sigma).
safe_loglik <- function(mod, theta) {
  if (mod$family == "gaussian") {
    if (any(unpack(mod, theta)$sigma < 1e-2 * criteria$sigma_floor * mod$sd_y)) return(NA)
  }
  ll <- tryCatch(evaluate(mod, theta)$loglik, error = function(e) NA, warning = function(w) NA)
  if (is.finite(ll)) ll else NA
}

# TRUE when theta is on its way to a degenerate solution (a sigma collapsing) or to the
# boundary (a class probability vanishing): no point polishing further.
heading_off <- function(mod, theta) {
  par <- unpack(mod, theta)
  (mod$family == "gaussian" && min(par$sigma) < criteria$sigma_floor * mod$sd_y) || at_boundary(mod, theta)
}

at_boundary <- function(mod, theta) {
  ev <- evaluate(mod, theta)
  min(colMeans(ev$prior)) < criteria$prior_floor ||
    max(abs(mod$Z %*% ev$par$Gam)) > criteria$logit_max
}

# Maximise from theta0: BFGS rounds until they stop gaining, then Newton steps.
polish <- function(mod, theta0) {
  fn <- function(th) { ll <- safe_loglik(mod, th); if (is.na(ll)) Inf else -ll }
  gr <- function(th) -gradient(mod, th)
  th <- theta0
  ll <- -fn(th)
  if (!is.finite(ll)) return(NULL)
  fit <- tryCatch({
    for (round in 1:200) {
      o <- optim(th, fn, gr, method = "BFGS", control = list(reltol = 1e-14, maxit = 100))
      gain <- -o$value - ll
      th <- o$par; ll <- -o$value
      if (gain < 1e-12 || heading_off(mod, th)) break
    }
    if (heading_off(mod, th)) return(list(theta = th, loglik = ll))
    for (it in 1:30) {
      g <- gradient(mod, th)
      if (max(abs(g)) < 1e-10) break
      H <- hessian(mod, th)
      step <- tryCatch(-solve(H, g), error = function(e) NULL)
      if (is.null(step) || any(!is.finite(step))) break
      accepted <- FALSE
      for (half in 0:20) {
        cand <- th + step / 2^half
        lc <- safe_loglik(mod, cand)
        if (!is.na(lc) && lc >= ll - 1e-12) { th <- cand; ll <- lc; accepted <- TRUE; break }
      }
      if (!accepted) break
    }
    list(theta = th, loglik = ll)
  }, error = function(e) NULL)
  fit
}

# Put the components in the stored order (first regression coefficient ascending: the mean
# or the intercept).  With class 1 as the multinomial-logit base, relabelling changes the
# gamma's: gamma'_k = gamma_perm[k] - gamma_perm[1].
reorder <- function(mod, theta) {
  par <- unpack(mod, theta)
  perm <- order(par$B[1, ])
  full <- cbind(0, par$Gam)[, perm, drop = FALSE]
  full <- full - full[, 1]
  pack(mod, par$B[, perm, drop = FALSE], par$sigma[perm], full[, -1, drop = FALSE])
}

# Polish, reorder, and classify a start.
assess <- function(mod, theta0) {
  fit <- polish(mod, theta0)
  if (is.null(fit)) return(list(status = "failed"))
  th <- reorder(mod, fit$theta)
  ev <- evaluate(mod, th)
  g <- gradient(mod, th, ev)
  par <- ev$par
  min_sigma_ratio <- if (mod$family == "gaussian") min(par$sigma) / mod$sd_y else NA
  if (!is.na(min_sigma_ratio) && min_sigma_ratio < criteria$sigma_floor) {
    return(list(status = "degenerate", loglik = ev$loglik, theta = th))
  }
  eig <- tryCatch(eigen(hessian(mod, th), symmetric = TRUE, only.values = TRUE)$values,
                  error = function(e) NA)
  min_prior <- min(colMeans(ev$prior))
  status <- if (at_boundary(mod, th)) "boundary"
            else if (max(abs(g)) > criteria$max_abs_gradient || any(is.na(eig)) || max(eig) >= 0) "not_a_maximum"
            else "maximum"
  list(status = status, loglik = ev$loglik, theta = th, tau = ev$tau, prior = ev$prior,
       diagnostics = list(max_abs_gradient = max(abs(g)), hessian_max_eigenvalue = max(eig),
                          hessian_min_eigenvalue = min(eig), min_sigma_over_sd_y = min_sigma_ratio,
                          sd_ratio = if (mod$family == "gaussian") min(par$sigma) / max(par$sigma) else NA,
                          spurious = mod$family == "gaussian" && min(par$sigma) / max(par$sigma) < criteria$spurious_sd_ratio,
                          min_mean_prior = min_prior,
                          component_sizes = unname(colSums(ev$tau))))
}

# Guard against a wrong analytic gradient: compare it with central differences of the loglik.
check_gradient <- function(mod, theta) {
  g <- gradient(mod, theta)
  num <- vapply(seq_along(theta), function(j) {
    h <- 1e-6 * max(1, abs(theta[j]))
    e <- replace(numeric(length(theta)), j, h)
    (evaluate(mod, theta + e)$loglik - evaluate(mod, theta - e)$loglik) / (2 * h)
  }, 0)
  stopifnot(max(abs(g - num)) < 1e-4 * max(1, abs(g)))
}

# Collect the polished solutions of many starts into distinct maxima.
collect <- function(mod, starts) {
  maxima <- list()
  tally <- list()
  off <- list()
  check_gradient(mod, starts[[1]]$theta)
  for (s in starts) {
    a <- assess(mod, s$theta)
    tally[[a$status]] <- c(tally[[a$status]], s$kind)
    if (a$status != "maximum") {
      if (!is.null(a$loglik)) off[[a$status]] <- c(off[[a$status]], a$loglik)
      next
    }
    hit <- 0
    for (j in seq_along(maxima)) {
      if (abs(maxima[[j]]$loglik - a$loglik) < criteria$same_loglik &&
          max(abs(maxima[[j]]$theta - a$theta)) < criteria$same_theta) { hit <- j; break }
    }
    if (hit == 0) {
      a$found_by <- character(0)
      a$package_logliks <- numeric(0)
      maxima[[length(maxima) + 1]] <- a
      hit <- length(maxima)
    } else if (a$loglik > maxima[[hit]]$loglik) {
      # keep the more precisely polished copy, with its own history
      a$found_by <- maxima[[hit]]$found_by
      a$package_logliks <- maxima[[hit]]$package_logliks
      maxima[[hit]] <- a
    }
    maxima[[hit]]$found_by <- c(maxima[[hit]]$found_by, s$kind)
    if (!is.null(s$package_loglik)) {
      maxima[[hit]]$package_logliks <- c(maxima[[hit]]$package_logliks, s$package_loglik)
    }
  }
  maxima <- maxima[order(-vapply(maxima, `[[`, 0, "loglik"))]
  message(sprintf("  %d starts polished, %d distinct maxima", length(starts), length(maxima)))
  # outcome counts per kind of start; for the starts that ended off a proper maximum, the
  # distinct logliks where they stopped (rounded to 1e-4; for degenerate ones this is just
  # where the search was cut off, the likelihood itself being unbounded there)
  outcomes <- lapply(names(tally), function(st) {
    o <- list(count = length(tally[[st]]), by_start = as.list(table(tally[[st]])))
    if (st != "maximum" && length(off[[st]])) o$logliks_where_stopped <- sort(unique(round(off[[st]], 4)), decreasing = TRUE)
    o
  })
  list(maxima = maxima, tally = setNames(outcomes, names(tally)))
}

# The reference maximum: the best proper maximum that is not spurious.  Returns its index
# in the (loglik-sorted) list.
pick_best <- function(maxima) {
  ok <- which(!vapply(maxima, function(m) m$diagnostics$spurious, TRUE))
  if (!length(ok)) stop("no non-spurious maximum found")
  ok[1]
}

# Random starts for optim: either a random hard partition of the observations followed by
# one M-step, or each component fitted to its own small random subset (equal class
# probabilities).  Concomitant slopes start at 0.
random_start <- function(mod, seed, type) {
  set.seed(seed)
  n <- mod$n; G <- mod$G
  W <- matrix(0, n, G)
  if (type == "partition") {
    W[cbind(seq_len(n), sample(G, n, replace = TRUE))] <- 1
  } else {
    m <- max(2 * mod$p + 1, 5)
    for (k in seq_len(G)) W[sample(n, m), k] <- 1
  }
  B <- matrix(0, mod$p, G)
  sigma <- numeric(G)
  for (k in seq_len(G)) {
    w <- W[, k]
    if (mod$family == "gaussian") {
      f <- lm.wfit(mod$X, mod$y, w)
      B[, k] <- f$coefficients
      sigma[k] <- max(sqrt(sum(w * f$residuals^2) / sum(w)), 0.05 * mod$sd_y)
    } else {
      B[, k] <- suppressWarnings(glm.fit(mod$X, mod$y, weights = w, family = poisson())$coefficients)
    }
  }
  B[is.na(B)] <- 0
  Gam <- matrix(0, mod$q, G - 1)
  if (type == "partition") Gam[1, ] <- log(colMeans(W)[-1] / colMeans(W)[1])
  pack(mod, B, if (mod$family == "gaussian") sigma, Gam)
}

random_starts <- function(mod, seeds) {
  c(lapply(seeds, function(s) list(kind = "optim random partition", theta = random_start(mod, s, "partition"))),
    lapply(seeds, function(s) list(kind = "optim random subsets", theta = random_start(mod, 10000 + s, "subsets"))))
}

# ---------------------------------------------------------------------------------------
# Output helpers.

polish_method <- paste(
  "theta = the unconstrained parametrisation (see theta$names); repeat",
  "optim(theta, function(t) -loglik(t), function(t) -gradient(t), method = \"BFGS\", control = list(reltol = 1e-14, maxit = 100))",
  "until a round gains < 1e-12 (at most 200 rounds), then Newton steps with the Hessian from central differences of the analytic gradient",
  "until max |gradient| < 1e-10 (at most 30, step halving so the loglik never drops)")

univariate_estimates <- function(mod, th) {
  ev <- evaluate(mod, th)
  list(mean = ev$par$B[1, ], sd = ev$par$sigma, variance = ev$par$sigma^2,
       proportion = unname(ev$prior[1, ]))
}

regression_estimates <- function(mod, th, coef_names, conc_names) {
  ev <- evaluate(mod, th)
  coefs <- setNames(lapply(seq_len(mod$p), function(j) ev$par$B[j, ]), coef_names)
  out <- list(coefficients = coefs)
  if (mod$family == "gaussian") out$sigma <- ev$par$sigma
  if (mod$q == 1) {
    out$proportion <- unname(ev$prior[1, ])
  } else {
    full <- cbind(0, ev$par$Gam)
    out$concomitant <- setNames(lapply(seq_len(mod$q), function(j) full[j, ]), conc_names)
    out$mean_prior <- unname(colMeans(ev$prior))
  }
  out
}

maximum_record <- function(m, estimates, names) {
  list(loglik = m$loglik, estimates = estimates(m$theta),
       theta = list(names = names, values = m$theta),
       found_by = as.list(table(m$found_by)),
       package_logliks_reaching_it = if (length(m$package_logliks)) sort(unique(signif(m$package_logliks, 12))),
       diagnostics = m$diagnostics)
}

write_reference <- function(name, out) {
  write_json(out, file.path(here, paste0(name, ".json")), digits = NA, auto_unbox = TRUE,
             pretty = TRUE, na = "null", null = "null")
  cat(sprintf("%-32s loglik %.10f\n", name, out$loglik))
}

run_call <- function(call) eval(parse(text = call), envir = globalenv())

# ---------------------------------------------------------------------------------------
# 1-2. Univariate normal mixtures with unequal variances: mclust model "V".

mclust_theta <- function(mod, m) {
  pack(mod, matrix(m$parameters$mean, 1), sqrt(m$parameters$variance$sigmasq),
       matrix(log(m$parameters$pro[-1] / m$parameters$pro[1]), 1))
}

# Plain recomputation from the named estimates.
normal_mixture_loglik <- function(y, est) {
  sum(log(rowSums(sapply(seq_along(est$mean), function(k)
    est$proportion[k] * dnorm(y, est$mean[k], est$sd[k])))))
}

fit_mclust <- function(y, yname, G, n_random) {
  mod <- mixture_model("gaussian", y, matrix(1, length(y), 1), matrix(1, length(y), 1), G)
  names <- theta_names(mod, "mean", "(Intercept)")
  main_call <- sprintf("Mclust(%s, G = %d, modelNames = \"V\")", yname, G)
  other_calls <- c(
    sprintf("Mclust(%s, G = %d, modelNames = \"V\", control = emControl(tol = c(1e-12, 1e-12), itmax = c(1e5, 1e5)))", yname, G),
    sprintf("Mclust(%s, G = %d, modelNames = \"V\", initialization = list(hcPairs = hc(%s, modelName = \"E\")))", yname, G, yname),
    sprintf("Mclust(%s, G = %d, modelNames = \"V\", initialization = list(hcPairs = hcRandomPairs(%s, seed = %d)))",
            yname, G, yname, 1:20),
    sprintf("{set.seed(%d); Mclust(%s, G = %d, modelNames = \"V\", initialization = list(subset = sample(length(%s), length(%s) %%/%% 2)))}",
            1:20, yname, G, yname, yname),
    sprintf("{set.seed(%d); me(%s, modelName = \"V\", z = unmap(sample(%d, length(%s), replace = TRUE), groups = 1:%d))}",
            1:20, yname, G, yname, G)
  )
  main <- run_call(main_call)
  starts <- list(list(kind = "mclust default (the call)", theta = mclust_theta(mod, main),
                      package_loglik = main$loglik))
  n_failed <- 0
  for (cl in other_calls) {
    m <- tryCatch(suppressWarnings(run_call(cl)), error = function(e) NULL)
    if (is.null(m) || is.null(m$parameters$mean) || any(!is.finite(m$parameters$mean)) ||
        any(!is.finite(m$parameters$variance$sigmasq))) { n_failed <- n_failed + 1; next }
    kind <- if (grepl("hcRandomPairs", cl)) "mclust hcRandomPairs" else if (grepl("subset", cl)) "mclust random subset"
            else if (grepl("hc\\(", cl)) "mclust hc E" else if (grepl("emControl", cl)) "mclust strict tolerance"
            else "mclust me from random partition"
    starts[[length(starts) + 1]] <- list(kind = kind, theta = mclust_theta(mod, m), package_loglik = m$loglik)
  }
  starts <- c(starts, random_starts(mod, seq_len(n_random)))
  res <- collect(mod, starts)

  # the package's own answer, polished
  pol <- assess(mod, mclust_theta(mod, main))
  ib <- pick_best(res$maxima)
  best <- res$maxima[[ib]]
  est <- univariate_estimates(mod, best$theta)
  est_pkg <- univariate_estimates(mod, reorder(mod, mclust_theta(mod, main)))
  check <- normal_mixture_loglik(y, est)
  mpars <- list(pro = est$proportion, mean = est$mean,
                variance = list(modelName = "V", d = 1, G = G, sigmasq = est$variance))
  check_mclust <- sum(dens(data = y, modelName = "V", parameters = mpars, logarithm = TRUE))
  z_mclust <- estep(data = y, modelName = "V", parameters = mpars)$z
  # mclust's own EM started at the best solution (its posterior) stays there
  em_best <- me(y, modelName = "V", z = best$tau, control = emControl(tol = c(1e-12, 1e-12), itmax = c(1e5, 1e5)))

  list(
    G = G,
    call = main_call,
    start_calls = other_calls,
    loglik = best$loglik,
    loglik_package = main$loglik,
    loglik_package_recomputed = evaluate(mod, mclust_theta(mod, main))$loglik,
    loglik_polished_from_package = if (pol$status == "maximum") pol$loglik else NA,
    loglik_check_dnorm = check,
    loglik_check_mclust_dens = check_mclust,
    loglik_mclust_em_from_best = em_best$loglik,
    df = length(best$theta),
    df_package = main$df,
    nobs = length(y),
    estimates = est,
    estimates_package = est_pkg,
    estimates_polished_from_package = if (pol$status == "maximum") univariate_estimates(mod, pol$theta),
    theta = list(names = names, values = best$theta),
    posterior_probabilities = best$tau,
    posterior_max_abs_diff_mclust_estep = max(abs(z_mclust - best$tau)),
    best_diagnostics = best$diagnostics,
    best_found_by = as.list(table(best$found_by)),
    best_found_including_spurious = if (ib > 1) maximum_record(res$maxima[[1]], function(th) univariate_estimates(mod, th), names),
    local_maxima = lapply(res$maxima[-ib], maximum_record, estimates = function(th) univariate_estimates(mod, th),
                          names = names),
    start_outcomes = res$tally,
    n_package_calls_failed = n_failed,
    package_polished_is_best = pol$status == "maximum" && abs(pol$loglik - best$loglik) < criteria$same_loglik
  )
}

univariate_notes <- function(r, what) {
  c(sprintf("%s: univariate normal mixture, G = %d, unequal variances (mclust model \"V\"), maximum likelihood (no prior).", what, r$G),
    "Components ordered by mean ascending (also in local_maxima and estimates_package).",
    "estimates: mean, sd (standard deviation), variance = sd^2, proportion = mixing proportion.",
    "theta: means, log(sd), then log(proportion_k / proportion_1) for k = 2..G (class 1 the base), in the stored order.",
    sprintf("loglik is the best non-spurious proper maximum found (polished; see below); loglik_package is Mclust's own value (%.10f), loglik - loglik_package = %.3g.",
            r$loglik_package, r$loglik - r$loglik_package),
    sprintf("Mclust's reported loglik is not quite the loglik at the parameters it returns (%.10f, loglik_package_recomputed): its EM stops at a relative tolerance of 1e-5.",
            r$loglik_package_recomputed),
    sprintf("Mclust's answer polished by optim/Newton reaches %.10f (loglik_polished_from_package, estimates_polished_from_package): %s.",
            r$loglik_polished_from_package,
            if (isTRUE(r$package_polished_is_best)) "the best maximum found"
            else sprintf("NOT the best maximum found: Mclust's default start (hierarchical clustering) ends at a local maximum %.4f below the best, listed in local_maxima",
                         r$loglik - r$loglik_polished_from_package)),
    sprintf("Independent checks at the best estimates: plain dnorm sum %.12f, mclust::dens %.12f; mclust::me started at the best posterior (tol 1e-12) reports %.12f (loglik_mclust_em_from_best).",
            r$loglik_check_dnorm, r$loglik_check_mclust_dens, r$loglik_mclust_em_from_best),
    "df = 3G - 1 free parameters (G means, G variances, G - 1 proportions); df_package is Mclust's.",
    "The likelihood is unbounded (a component collapsing onto one value: sd -> 0, loglik -> +Inf), so 'best' means the best proper local maximum found that is not spurious (min sd / max sd >= criteria$spurious_sd_ratio, Hathaway's constraint). Starts that headed to such a degenerate point, or to the boundary (a proportion -> 0), or stopped at a saddle (e.g. a G-1 solution with a duplicated component) are counted under start_outcomes and excluded; thresholds in criteria.",
    "local_maxima: the other distinct proper maxima (gradient ~ 0, negative-definite Hessian), best first, with found_by (how many starts of each kind reached it) and diagnostics (component_sizes = column sums of the posterior; sd_ratio; spurious). Spurious ones have a component with a very small sd on a few close values (McLachlan and Peel's 'spurious' maxima): proper local maxima, but more of them, some higher, may exist than were found, so they are not used as the reference.",
    if (!is.null(r$best_found_including_spurious))
      sprintf("The highest maximum found, %.6f, is spurious (sd_ratio %.4f, found by %d of the starts): stored under best_found_including_spurious, not used as the reference.",
              r$best_found_including_spurious$loglik, r$best_found_including_spurious$diagnostics$sd_ratio,
              sum(unlist(r$best_found_including_spurious$found_by))),
    "start_calls: the other mclust calls that were evaluated as starts; besides them, 'optim random partition' / 'optim random subsets' starts (random_start() in the script, seeds 1..n) went straight to optim.")
}

dataset_info <- list(
  galaxies = "MASS::galaxies / 1000 (velocities of 82 galaxies, in 1000 km/s; MASS's data as shipped, including the 78th value 26690 that its help page says should be 26960)",
  faithful = "datasets::faithful$waiting (waiting time between eruptions of Old Faithful, minutes; 272 values)"
)

# galaxies: G = 4 (the main fit, with posterior probabilities) and G = 3 (its own entry, "G3")
gal4 <- fit_mclust(galaxies, "galaxies", 4, n_random = 200)
gal3 <- fit_mclust(galaxies, "galaxies", 3, n_random = 100)
gal3$notes <- univariate_notes(gal3, "MASS::galaxies / 1000")
gal3$posterior_probabilities <- NULL
gal4$notes <- c(univariate_notes(gal4, "MASS::galaxies / 1000"),
  "posterior_probabilities: n x G matrix (rows in data order, columns in the stored component order) at the best polished estimates; posterior_max_abs_diff_mclust_estep compares them with mclust::estep at the same estimates.",
  "G3 holds the G = 3 fit, with the same fields (without posterior probabilities).")
galaxies_out <- c(list(
  source = "tests/reference/make_mixture_references.R",
  software = "R: mclust::Mclust (EM fit), stats::optim BFGS + Newton steps (polishing), stats::dnorm (check)",
  version = versions,
  dataset = dataset_info$galaxies,
  data = list(file = "data/galaxies.csv", md5 = md5("galaxies.csv"),
              prep = "read.csv(); galaxies <- velocity (already divided by 1000 in the file, i.e. in 1000 km/s)"),
  criteria = criteria, polish = polish_method), gal4, list(G3 = gal3))
write_reference("mclust_galaxies", galaxies_out)

fw <- fit_mclust(waiting, "waiting", 2, n_random = 100)
fw$notes <- c(univariate_notes(fw, "datasets::faithful$waiting"),
              "posterior_probabilities: n x G matrix (rows in data order, columns in the stored component order) at the best polished estimates.",
              "The data are integers with many ties.")
write_reference("mclust_faithful", c(list(
  source = "tests/reference/make_mixture_references.R",
  software = "R: mclust::Mclust (EM fit), stats::optim BFGS + Newton steps (polishing), stats::dnorm (check)",
  version = versions,
  dataset = dataset_info$faithful,
  data = list(file = "data/faithful_waiting.csv", md5 = md5("faithful_waiting.csv"),
              prep = "read.csv(); waiting <- waiting (minutes, as numeric)"),
  criteria = criteria, polish = polish_method), fw))

# ---------------------------------------------------------------------------------------
# 3-5. Regression mixtures on NPreg: flexmix.

flexmix_theta <- function(mod, f) {
  pr <- parameters(f)
  B <- pr[grep("^coef\\.", rownames(pr)), , drop = FALSE]
  sigma <- if (mod$family == "gaussian") pr["sigma", ]
  Gam <- if (mod$q == 1) matrix(log(prior(f)[-1] / prior(f)[1]), 1)
         else parameters(f, which = "concomitant")[, -1, drop = FALSE]
  pack(mod, unname(B), unname(sigma), unname(Gam))
}

# Plain recomputation from the named estimates.
regression_mixture_loglik <- function(family, y, X, Z, est) {
  B <- do.call(rbind, est$coefficients)
  G <- ncol(B)
  P <- if (is.null(est$concomitant)) matrix(est$proportion, length(y), G, byrow = TRUE)
       else { e <- exp(Z %*% do.call(rbind, est$concomitant)); e / rowSums(e) }
  dens <- sapply(seq_len(G), function(k) {
    mu <- drop(X %*% B[, k])
    if (family == "gaussian") dnorm(y, mu, est$sigma[k]) else dpois(y, exp(mu))
  })
  sum(log(rowSums(P * dens)))
}

fit_flexmix <- function(family, formula, conc_formula, model_arg, conc_arg, seed, n_single = 30, n_random = 60) {
  X <- model.matrix(as.formula(formula), npreg)
  Z <- model.matrix(as.formula(conc_formula), npreg)
  y <- npreg[[all.vars(as.formula(formula))[1]]]
  mod <- mixture_model(family, y, X, Z, 2)
  names <- theta_names(mod, colnames(X), colnames(Z))
  ctrl <- "control = list(tolerance = 1e-12, iter.max = 5000)"
  args <- paste0(formula, ", data = npreg, k = 2", model_arg, conc_arg)
  main_call <- sprintf("{set.seed(%d); stepFlexmix(%s, nrep = 20, %s, verbose = FALSE)}", seed, args, ctrl)
  other_calls <- c(
    sprintf("flexmix(%s, cluster = npreg$class, %s)", args, ctrl),
    sprintf("{set.seed(%d); flexmix(%s, %s)}", seq_len(n_single), args, ctrl)
  )
  main <- run_call(main_call)
  starts <- list(list(kind = "flexmix stepFlexmix (the call)", theta = flexmix_theta(mod, main),
                      package_loglik = as.numeric(logLik(main))))
  n_dropped <- 0
  for (cl in other_calls) {
    f <- tryCatch(run_call(cl), error = function(e) NULL)
    if (is.null(f) || f@k < 2) { n_dropped <- n_dropped + 1; next }
    kind <- if (grepl("cluster", cl)) "flexmix started at npreg$class" else "flexmix single random start"
    starts[[length(starts) + 1]] <- list(kind = kind, theta = flexmix_theta(mod, f),
                                         package_loglik = as.numeric(logLik(f)))
  }
  starts <- c(starts, random_starts(mod, seq_len(n_random)))
  res <- collect(mod, starts)

  theta_pkg <- flexmix_theta(mod, main)
  pol <- assess(mod, theta_pkg)
  ib <- pick_best(res$maxima)
  best <- res$maxima[[ib]]
  est_fun <- function(th) regression_estimates(mod, th, colnames(X), colnames(Z))
  est <- est_fun(best$theta)
  # flexmix's class labels -> the stored order, for the record
  perm_pkg <- order(unpack(mod, theta_pkg)$B[1, ])
  # flexmix's own EM started at the best solution (its posterior as the initial weights)
  from_best_call <- sprintf("flexmix(%s, cluster = posterior_at_best, %s)", args, ctrl)
  assign("posterior_at_best", best$tau, envir = globalenv())
  from_best <- run_call(from_best_call)
  out <- list(
    call = main_call,
    start_calls = other_calls,
    loglik = best$loglik,
    loglik_package = as.numeric(logLik(main)),
    loglik_package_recomputed = evaluate(mod, theta_pkg)$loglik,
    loglik_polished_from_package = if (pol$status == "maximum") pol$loglik else NA,
    loglik_check_plain = regression_mixture_loglik(family, y, X, Z, est),
    loglik_package_started_at_best = as.numeric(logLik(from_best)),
    package_started_at_best_call = from_best_call,
    df = length(best$theta),
    df_package = attr(logLik(main), "df"),
    nobs = length(y),
    estimates = est,
    estimates_package = est_fun(reorder(mod, theta_pkg)),
    estimates_polished_from_package = if (pol$status == "maximum") est_fun(pol$theta),
    package_component_order = perm_pkg,
    theta = list(names = names, values = best$theta),
    posterior_probabilities = best$tau,
    best_diagnostics = best$diagnostics,
    best_found_by = as.list(table(best$found_by)),
    best_found_including_spurious = if (ib > 1) maximum_record(res$maxima[[1]], est_fun, names),
    local_maxima = lapply(res$maxima[-ib], maximum_record, estimates = est_fun, names = names),
    start_outcomes = res$tally,
    n_flexmix_runs_dropped = n_dropped,
    package_polished_is_best = pol$status == "maximum" && abs(pol$loglik - best$loglik) < criteria$same_loglik,
    package_iterations = main@iter,
    package_converged = main@converged
  )
  # flexmix's gaussian M-step: sigma^2 = sum(w r^2) / sum(w) * n / (n - rank), n = all
  # observations.  Measure it at flexmix's own answer.
  if (family == "gaussian") {
    ev <- evaluate(mod, theta_pkg)
    ml_sigma <- sapply(1:2, function(k) sqrt(sum(ev$tau[, k] * (y - ev$M[, k])^2) / sum(ev$tau[, k])))
    out$package_sigma_over_weighted_ml_sigma <- (ev$par$sigma / ml_sigma)[perm_pkg]
    out$sqrt_n_over_n_minus_p <- sqrt(mod$n / (mod$n - mod$p))
  }
  out
}

regression_notes <- function(r, what, family) {
  c(what,
    "Components ordered by the intercept ascending (also in local_maxima and estimates_package); package_component_order[j] is flexmix's label of stored component j.",
    if (family == "gaussian") "estimates: coefficients (per name, one value per component), sigma = residual standard deviation per component, and the class probabilities (see below).",
    if (family == "poisson") "estimates: coefficients on the log-mean scale (log link), per name, one value per component, and proportion = mixing proportions.",
    sprintf("theta: coefficients of component 1, of component 2,%s then the multinomial-logit class coefficients (class 1 the base).",
            if (family == "gaussian") " log(sigma_1), log(sigma_2)," else ""),
    sprintf("loglik is the best %sproper maximum found (polished); loglik_package is flexmix's own value (%.10f), loglik - loglik_package = %.3g.",
            if (family == "gaussian") "non-spurious " else "", r$loglik_package, r$loglik - r$loglik_package),
    sprintf("loglik_package_recomputed (%.10f) is our loglik at flexmix's returned parameters.", r$loglik_package_recomputed),
    sprintf("flexmix's answer polished by optim/Newton reaches %.10f (loglik_polished_from_package, estimates_polished_from_package): %s.",
            r$loglik_polished_from_package,
            if (isTRUE(r$package_polished_is_best)) "the best maximum found" else "NOT the best maximum found"),
    sprintf("Independent check at the best estimates (plain %s sum): %.12f.",
            if (family == "gaussian") "dnorm" else "dpois", r$loglik_check_plain),
    sprintf("flexmix's EM started at the best posterior (package_started_at_best_call) ends at loglik %.10f%s.",
            r$loglik_package_started_at_best,
            if (family == "gaussian") " (flexmix's own fixed point, not the ML estimate: see the sigma quirk below)" else ""),
    "'Best' is the best proper local maximum found (for gaussian components: that is not spurious, min sigma / max sigma >= criteria$spurious_sd_ratio; none of the spurious ones found is higher here unless best_found_including_spurious is present): starts that ended with a vanishing sigma (degenerate), a vanishing class or diverging multinomial-logit coefficients (boundary), or at a saddle are counted under start_outcomes and excluded; thresholds in criteria.",
    "start_calls: the other flexmix calls that were evaluated as starts; besides them, 'optim random partition' / 'optim random subsets' starts (random_start() in the script, seeds 1..n) went straight to optim.",
    sprintf("df = %d free parameters; df_package is flexmix's logLik df.", r$df),
    "Fitted to npreg, the data as read back from data/npreg.csv (identical to flexmix's NPreg columns x, yn, yp, class).",
    "posterior_probabilities: n x 2 matrix, rows in data order, columns in the stored order, at the best polished estimates.",
    paste0("local_maxima: the other distinct proper maxima (gradient ~ 0, negative-definite Hessian), best first, with found_by (how many starts of each kind reached it) and diagnostics (component_sizes = column sums of the posterior).",
           if (family == "gaussian") " Those flagged spurious (a tiny sigma on a few observations) are proper maxima too, but not used as the reference."),
    "flexmix drops a component whose prior falls below minprior = 0.05 (default); such runs are counted in n_flexmix_runs_dropped and not used.")
}

gaussian_sigma_note <- function(r) {
  sprintf(paste("flexmix quirk: FLXMRglm(family = \"gaussian\") estimates sigma^2 in its M-step as sum(w r^2)/sum(w) * n/(n - rank) with n = all %d observations,",
                "not the ML value sum(w r^2)/sum(w); at flexmix's answer sigma / (weighted ML sigma) = %s (sqrt(n/(n-p)) = %.6f).",
                "So flexmix's EM converges to a point that is not the maximum-likelihood estimate, and its loglik is below the polished one."),
          r$nobs, paste(sprintf("%.6f", r$package_sigma_over_weighted_ml_sigma), collapse = ", "), r$sqrt_n_over_n_minus_p)
}

npreg_common <- list(
  source = "tests/reference/make_mixture_references.R",
  version = versions,
  dataset = "flexmix::NPreg (data(NPreg, package = \"flexmix\")), columns x, yn, yp, class; 200 observations simulated in flexmix with 2 classes",
  data = list(file = "data/npreg.csv", md5 = md5("npreg.csv"), prep = "npreg <- read.csv(); used as is"),
  criteria = criteria,
  polish = polish_method
)

# 3. gaussian regression, quadratic in x, class-specific coefficients and sigma
ng <- fit_flexmix("gaussian", "yn ~ x + I(x^2)", "~ 1", "", "", seed = 1)
ng$notes <- c(regression_notes(ng, "Mixture of 2 gaussian linear regressions yn ~ x + I(x^2), class-specific coefficients and sigma, constant mixing proportions.", "gaussian"),
              "estimates$proportion: mixing proportions.", gaussian_sigma_note(ng))
write_reference("flexmix_npreg_gaussian", c(npreg_common, list(
  software = "R: flexmix::stepFlexmix / flexmix (EM fit), stats::optim BFGS + Newton steps (polishing), stats::dnorm (check)"), ng))

# 4. poisson regression (log link)
np <- fit_flexmix("poisson", "yp ~ x", "~ 1", ", model = FLXMRglm(family = \"poisson\")", "", seed = 1)
np$notes <- regression_notes(np, "Mixture of 2 poisson log-linear regressions yp ~ x, class-specific coefficients, constant mixing proportions.", "poisson")
write_reference("flexmix_npreg_poisson", c(npreg_common, list(
  software = "R: flexmix::stepFlexmix / flexmix (EM fit), stats::optim BFGS + Newton steps (polishing), stats::dpois (check)"), np))

# 5. gaussian regression with a concomitant multinomial-logit model for the class probabilities
nc <- fit_flexmix("gaussian", "yn ~ x", "~ x", "", ", concomitant = FLXPmultinom(~ x)", seed = 1)
nc$notes <- c(regression_notes(nc, "Mixture of 2 gaussian linear regressions yn ~ x with class-specific coefficients and sigma; class probabilities from a concomitant multinomial logit in x (FLXPmultinom(~ x)).", "gaussian"),
  "estimates$concomitant: per coefficient name ((Intercept), x), one value per component, class 1 (of the stored order) the base: P(class k | x) = exp(g_k0 + g_k1 x) / sum_j exp(g_j0 + g_j1 x), g_1 = (0, 0).",
  "flexmix's parameters(fit, which = \"concomitant\") also has its class 1 as base (a zero column); where the stored order differs from flexmix's labels (package_component_order), the coefficients are re-based: g'_k = g_perm[k] - g_perm[1]. estimates_package holds flexmix's answer transformed this way.",
  "estimates$mean_prior: the class probabilities averaged over the 200 observations (no constant mixing proportion in this model).",
  "flexmix's concomitant M-step is a weighted multinomial fit by nnet (default maxit = 100, reltol 1e-8), a further reason its answer sits slightly off the maximum.",
  gaussian_sigma_note(nc))
write_reference("flexmix_npreg_concomitant", c(npreg_common, list(
  software = "R: flexmix::stepFlexmix / flexmix with FLXPmultinom (EM fit), stats::optim BFGS + Newton steps (polishing), stats::dnorm (check)"), nc))

# ---------------------------------------------------------------------------------------
# data/README.md: this script owns the section between the markers below (make_lme4_references.R
# rewrites the whole file; run this script after it).

begin <- "<!-- make_mixture_references.R: begin -->"
end <- "<!-- make_mixture_references.R: end -->"
section <- c(
  begin,
  "",
  "## Mixture-model reference data (written by make_mixture_references.R)",
  "",
  sprintf("Written with %s (%s) by `write.csv(row.names = FALSE, quote = FALSE)`, each number as the shortest decimal that reads back to the same double (checked).",
          versions$R, versions$source),
  "",
  "| file | dataset | columns | md5 |",
  "|---|---|---|---|",
  sprintf("| galaxies.csv | MASS::galaxies / 1000 (MASS %s) | velocity (in 1000 km/s, i.e. km/s divided by 1000) | %s |", versions$MASS, md5("galaxies.csv")),
  sprintf("| faithful_waiting.csv | datasets::faithful$waiting | waiting (minutes) | %s |", md5("faithful_waiting.csv")),
  sprintf("| npreg.csv | flexmix::NPreg (flexmix %s) | x, yn, yp, class | %s |", versions$flexmix, md5("npreg.csv")),
  "",
  "galaxies: the 82 velocities of Roeder (1990) as shipped in MASS, data order kept; MASS's help notes the 78th value (26690) is a typo for 26960, left as is.",
  "npreg.csv keeps NPreg's columns x, yn (gaussian response), yp (poisson response) and class (the true class); yb, id1, id2 are dropped.",
  "",
  end
)
readme <- file.path(here, "data", "README.md")
old <- if (file.exists(readme)) readLines(readme) else character(0)
b <- match(begin, old); e <- match(end, old)
new <- if (!is.na(b) && !is.na(e)) c(old[seq_len(b - 1)], section, old[-seq_len(e)]) else c(old, "", section)
writeLines(new, readme)
