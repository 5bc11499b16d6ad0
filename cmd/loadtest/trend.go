package main

import "math"

// fitLine is the least-squares line y = a + b·x through the points, and
// b's standard error from the residuals (n-2 degrees of freedom). It
// needs at least three points with two different x.
func fitLine(x, y []float64) (a, b, se float64) {
	n := float64(len(x))
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx, my = mx/n, my/n
	var sxx, sxy float64
	for i := range x {
		dx := x[i] - mx
		sxx += dx * dx
		sxy += dx * (y[i] - my)
	}
	b = sxy / sxx
	a = my - b*mx
	var ssr float64
	for i := range x {
		r := y[i] - a - b*x[i]
		ssr += r * r
	}
	return a, b, math.Sqrt(ssr / (n - 2) / sxx)
}

// tQuantile is the p quantile (0.5 < p < 1) of Student's t distribution
// with df degrees of freedom (t 0.975 with 3 df is 3.182), by bisection
// on its distribution function.
func tQuantile(p float64, df int) float64 {
	lo, hi := 0.0, 1.0
	for tCDF(hi, df) < p {
		lo, hi = hi, hi*2
	}
	for range 200 {
		mid := (lo + hi) / 2
		if mid == lo || mid == hi {
			break
		}
		if tCDF(mid, df) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// tCDF is Student's t distribution function at t ≥ 0 with df degrees of
// freedom: 1 - I_{df/(df+t²)}(df/2, 1/2) / 2.
func tCDF(t float64, df int) float64 {
	v := float64(df)
	return 1 - betaInc(v/2, 0.5, v/(v+t*t))/2
}

// betaInc is the regularized incomplete beta function I_x(a, b), by its
// continued fraction (Numerical Recipes, 6.4).
func betaInc(a, b, x float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	front := math.Exp(lab - la - lb + a*math.Log(x) + b*math.Log1p(-x))
	if x < (a+1)/(a+b+2) {
		return front * betaCF(a, b, x) / a
	}
	return 1 - front*betaCF(b, a, 1-x)/b
}

// betaCF evaluates betaInc's continued fraction by the modified Lentz
// method.
func betaCF(a, b, x float64) float64 {
	const tiny = 1e-300
	nz := func(v float64) float64 {
		if math.Abs(v) < tiny {
			return tiny
		}
		return v
	}
	c, d := 1.0, 1/nz(1-(a+b)*x/(a+1))
	h := d
	for m := 1; m <= 300; m++ {
		fm := float64(m)
		aa := fm * (b - fm) * x / ((a + 2*fm - 1) * (a + 2*fm))
		d = 1 / nz(1+aa*d)
		c = nz(1 + aa/c)
		h *= d * c
		aa = -(a + fm) * (a + b + fm) * x / ((a + 2*fm) * (a + 2*fm + 1))
		d = 1 / nz(1+aa*d)
		c = nz(1 + aa/c)
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-15 {
			break
		}
	}
	return h
}
