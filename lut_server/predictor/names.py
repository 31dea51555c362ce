"""The learners and training-share choices the predictor offers, by name.

Apart from the modules that implement them (numpy, LightGBM): every `lut` start builds the
`lut predictor eval` parser from these names and should not import numpy to do it.
"""

BLEND = "lightgbm+ridge"
LEARNERS = (BLEND, "lightgbm", "extra-trees", "ridge", "none")
CHOICES = ("random", "random+fixed", "random+family", "planner")
