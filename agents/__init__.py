"""JoyNet's agents, each one file of decorated handlers on ``joynet.chain.bot.Bot``: the edge node
(``edge_node``), the IOTA bridger (``iota_bridger``) and the DAO voter (``dao_voter``). Their state
and decisions live in the library (``EdgeNode``, ``Bridger``, ``DaoVoter``); ``agents.cli`` holds the
command lines that build that state and run the bot (``joynet agent ...``, and ``ape run ...``
through ``scripts/``)."""
