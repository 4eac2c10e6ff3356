"""What every Bündnis service needs alike, written once."""
