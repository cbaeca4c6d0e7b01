"""One router per domain: health, async reports, jobs, sync reports, library, downloads."""
