#!/usr/bin/env bash
# Seeds each fuzz target's corpus from events/ (real payloads and requests).
set -euo pipefail
cd "$(dirname "$0")"
for t in webhook_signature webhook_payload sigv4_verify environment_names blueprint_check; do mkdir -p "corpus/$t"; done
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
# Blueprints, as JSON with CloudFormation's short-form tags in long form.
"${EPHEMERA_VENV:-../.venv}/bin/python" - <<'PY'
import json, yaml
class Loader(yaml.SafeLoader):
    pass
def tagged(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        v = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        v = loader.construct_sequence(node, deep=True)
    else:
        v = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(v, str):
        v = v.split(".", 1)
    return {"Ref" if suffix == "Ref" else "Fn::" + suffix: v}
Loader.add_multi_constructor("!", tagged)
for src, name in [("../infra/blueprints/default.yaml", "default"), ("../tests/fixtures/amplify-backend.yaml", "amplify")]:
    doc = yaml.load(open(src), Loader=Loader)
    json.dump(doc, open(f"corpus/blueprint_check/{name}.json", "w"), default=str)
PY
