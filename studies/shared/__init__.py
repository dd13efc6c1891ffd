"""What several studies use: config sections (:mod:`.sections`, :mod:`.learning`), steps (:mod:`.steps`) and the
ASPIRE loop (:mod:`.aspire`)."""
