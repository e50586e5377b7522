"""Host: readiness checks for TDX, GPU validation and preparation, expected measurements."""
