import matplotlib

# Headless plotting for every test, set before any test module imports pyplot.
matplotlib.use("Agg")
