"""What-if simulator: replays utilisation traces through overload/selection/placement policies.

Reproduces the accounting of CloudSim 3.0.3 (Beloglazov & Buyya 2012) so that the paper's
policies and xdrs's own strategies are compared on the same days.
"""
