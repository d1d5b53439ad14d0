"""Benchmarks for vae_tfp: the GEMM ceiling, analytic FLOP counts and the textbook Keras 3 VAE baseline."""
