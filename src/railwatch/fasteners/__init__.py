"""Fastener anomaly detection with a knowledge-distilled GAN (paper 000)."""
