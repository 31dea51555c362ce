"""LUT formats that other NAS code reads (torch-free, Python 3.8)."""

# What `lut export --format` writes and `lut import --format` reads besides our own nas-lut/1 document;
# kept here, import-free, so the CLI builds its parser without loading the format modules.
OTHER_FORMATS = ("proxyless-yaml", "ofa-mbv3-yaml", "tfnas-pickle", "fbnet-jsonl")
