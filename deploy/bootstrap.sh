#!/bin/sh
# The compose stack's one-shot first step: deploy the protocol on its anvil (`ape run deploy`, a
# no-op when the deployment file names live contracts), then publish the built-in models to the
# IPFS daemon and register them, as the model owner (test account 4), when it was a new deployment.
set -eu
cd /opt/joynet
file="$JOYNET_DEPLOYMENTS_DIR/local.json"
before=$(stat -c %Y "$file" 2>/dev/null || echo none)
ape run deploy --network ethereum:local:foundry
after=$(stat -c %Y "$file")
if [ "$before" = "$after" ]; then
    echo "bootstrap: the protocol was already deployed; its models were registered then"
    exit 0
fi
cids=$(joynet model publish-builtin)
cid_of() { printf '%s' "$cids" | python -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
joynet model register "$(cid_of digits)" --model-id digits --price 5 --account test:4
joynet model register "$(cid_of minilm)" --model-id minilm --price 6 --account test:4
echo "bootstrap: deployed; digits and minilm registered"
