"""Taking part in the DAO: the voter's policy and decisions (``voter``) and the proposals
written on the command line (``proposals``). The DAO's contract client is ``joynet.chain.dao``."""
