#!/usr/bin/env bash
# Seeds each fuzz target's corpus from events/ (real payloads and requests).
set -euo pipefail
cd "$(dirname "$0")"
for t in webhook_signature webhook_payload sigv4_verify environment_names; do mkdir -p "corpus/$t"; done
for f in ../events/github/*.json; do
  cp "$f" "corpus/webhook_payload/$(basename "$f")"
  body=$(cat "$f")
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac fuzz-secret | sed 's/^.*= *//')
  printf 'sha256=%s\n%s' "$sig" "$body" > "corpus/webhook_signature/$(basename "$f")"
done
printf 'acme/todo-app\n7\nkyle' > corpus/environment_names/pr
printf 'Some.Org/Repo_Name.With.Dots\n18446744073709551615\nKyle-Dev' > corpus/environment_names/long
printf '%0255d/%0255d\n1\n%0100d' 0 0 0 > corpus/environment_names/max
python3 - <<'PY'
import json
e = json.load(open("../events/apigw/selfservice-list.json"))
lines = [e["requestContext"]["http"]["method"], e["rawPath"]]
lines += [f"{k}: {v}" for k, v in e["headers"].items()]
open("corpus/sigv4_verify/selfservice-list", "w").write("\n".join(lines) + "\n\n")
PY
