"""Challenge mode: a whole NTIRE ESR challenge's entries, judged by that year's rules.

- :mod:`.years`: each year's rules as data (counting conventions, baseline, runtime protocol, memory input, PSNR
  thresholds, score);
- :mod:`.manifest`: the TOML manifest that lists a challenge's entries, and :mod:`.draft` that drafts one from an
  organisers' repository;
- :mod:`.worker` / :mod:`.run`: every entry as a supervised sweep cell, and the leaderboard;
- :mod:`.check`: a participant's pre-submission check.
"""
