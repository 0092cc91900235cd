"""Flawed evaluations, on purpose (issue 21, notebook 08-forensics): pipelines a careful author
could plausibly have run, each of which does not attack what it reports, applied to the study's
own models to ask which of them, alone or combined, gives numbers like the paper's.

    flaws.py    the named flaws: what each changes (options), why it is wrong, who described it
    attack.py   one configurable L-inf loop and judge that carry the flaws (no flaw: the library's
                PGD / FGSM exactly)
    study.py    every flaw on the quick study's models beside the paper's cells and our honest
                number; the plain statement for the index

Kept apart from the study's evaluation: nothing else in dfl_lib imports this package, no attack
registry, suite or profile names its flaws, and only notebook 08 uses it (tests/test_forensics.py
checks all three). It may import attacks/, evaluation/, models/, paper/ and study/ (to load runs);
none of them may import it.
"""
