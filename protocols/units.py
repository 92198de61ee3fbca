"""Force-unit factors shared by every codec (and by the core's units module): one truth.

Exact by definition: 1 kgf = 9.80665 N (standard gravity, CGPM 1901);
1 lbf = 0.45359237 kg x 9.80665 m/s^2 = 4.4482216152605 N.
"""

KGF_N = 9.80665
LBF_N = 4.4482216152605
