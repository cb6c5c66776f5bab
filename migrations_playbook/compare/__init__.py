"""`strangler compare`: the contract suite before and after an extraction, side by side.

* ``results``: the result model (one outcome per test and side) and the verdict rules;
* ``junit``: JUnit XML (as pytest writes it) into results, retries folded in as flaky;
* ``suite``: run the contract suite against one URL (pytest subprocess), retrying failures once;
* ``stack``: start and stop the stack of one playbook step (`strangler up`) on free ports;
* ``evidence``: routes moved between the sides, the proxy's shadow diffs, reconciliation;
* ``report``: the text table and the self-contained HTML page;
* ``replay``: recorded requests sent to both sides, compared with the proxy's rules;
* ``cli``: the `strangler compare` command.
"""
