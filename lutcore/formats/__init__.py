"""LUT formats that other NAS code reads (torch-free, Python 3.8)."""
