"""Everything that talks to the contracts: the deployment file and the deploy routine, the
marketplace, DAO and IOTAValidator clients, and transaction signing."""
