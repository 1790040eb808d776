"""Run VOS methods over DAVIS / DAVIS-C and score them exactly as the official DAVIS evaluator."""
