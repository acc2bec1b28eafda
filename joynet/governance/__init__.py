"""Taking part in the DAO: the voter's policy and decisions (``voter``), the proposals written
on the command line and their checks (``proposals``), and what the governance command prints
(``reports``). The DAO's contract client is ``joynet.chain.dao``."""
