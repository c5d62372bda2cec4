"""A record of every call made to the emulator, as IAM would see it.

Each call is one JSON line: {"key", "account", "role", "session", "tags", "service",
"operation", "checks": [[action, resource], ...]}. `role`, `session` and `tags` (its session
tags) describe the role session behind the access key when it came from AssumeRole (else null
and {}). `checks` are the (action, resource ARN)
pairs AWS authorizes the call against: usually one; one per item for a DynamoDB transaction,
one per event bus for PutEvents, one per key for S3's DeleteObjects. A resource this module
cannot tell is "*", the most any statement must grant.

moto names the operation (for S3, the IAM action) before it checks permissions, in
`_authenticate_and_authorize_action`, which runs for every call whether IAM is enforced or not:
the record is taken there.
"""
import json
import re
import threading
from urllib.parse import unquote

from html import unescape

from moto.core.authorization import ActionAuthenticatorMixin
from moto.secretsmanager.models import secretsmanager_backends
from moto.sts.models import STSBackend, sts_backends
from moto.sts.responses import TokenResponse

# The IAM prefix of each service whose signing name differs from it.
PREFIXES = {"tagging": "tag", "monitoring": "cloudwatch", "email": "ses"}

# DynamoDB transactions are authorized item by item, with each item's own action.
ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}


def _arn(service, region, account, resource):
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _params(response):
    """The request's parameters: its JSON body, else its query string or form (first values)."""
    body = response.body
    if isinstance(body, dict):
        return body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if body and body.lstrip().startswith("{"):
        try:
            return json.loads(body)
        except ValueError:
            pass
    return {k: v[0] if isinstance(v, list) and v else v for k, v in (response.querystring or {}).items()}


def _dynamodb(action, p, region, account):
    def table(name, index=None):
        arn = name if name.startswith("arn:") else _arn("dynamodb", region, account, f"table/{name}")
        return f"{arn}/index/{index}" if index else arn

    if action in ("TransactWriteItems", "TransactGetItems"):
        checks = []
        for item in p.get("TransactItems", []):
            kind, op = next(iter(item.items()))
            checks.append((ITEM_ACTIONS.get(kind, kind), table(op.get("TableName", "?"))))
        return checks
    if action in ("BatchWriteItem", "BatchGetItem"):
        return [(action, table(name)) for name in p.get("RequestItems", {})]
    if "TableName" in p:
        return [(action, table(p["TableName"], p.get("IndexName")))]
    return [(action, "*")]


def _sqs(p, region, account):
    url = p.get("QueueUrl")
    if url:
        owner, name = url.rstrip("/").rsplit("/", 2)[-2:]
        return _arn("sqs", region, owner if owner.isdigit() else account, name)
    if "QueueName" in p:
        return _arn("sqs", region, account, p["QueueName"])
    return "*"


def _events(action, p, region, account):
    def bus(name):
        return name if name.startswith("arn:") else _arn("events", region, account, f"event-bus/{name}")

    if action == "PutEvents":
        names = {e.get("EventBusName") or "default" for e in p.get("Entries", [])}
        return [(action, bus(n)) for n in sorted(names)]
    if "EventBusName" in p or "Name" in p and action.endswith("EventBus"):
        return [(action, bus(p.get("EventBusName") or p["Name"]))]
    if "Rule" in p or "Name" in p:
        return [(action, _arn("events", region, account, f"rule/{p.get('Rule') or p['Name']}"))]
    return [(action, "*")]


def _cloudformation(p, region, account):
    name = p.get("StackName")
    if not name:
        return "*"
    return name if name.startswith("arn:") else _arn("cloudformation", region, account, f"stack/{name}/*")


def _path_resource(service, path, region, account):
    """The resource of a REST call, from its path."""
    if service == "lambda":
        m = re.search(r"/event-source-mappings/([^/?]+)", path)
        if m:
            return _arn("lambda", region, account, f"event-source-mapping:{m.group(1)}")
        m = re.search(r"/functions/([^/?]+)", path)
        if m:
            name = unquote(m.group(1))
            return name if name.startswith("arn:") else _arn("lambda", region, account, f"function:{name}")
    if service == "appsync":
        m = re.search(r"/v1/tags/(arn[^?]+)", path)
        if m:
            return unquote(m.group(1))
        m = re.search(r"/v1/apis/([^/?]+)", path)
        if m:
            return _arn("appsync", region, account, f"apis/{m.group(1)}")
    return "*"


def _resource(service, action, p, region, account):
    """The one resource of a call to a service other than DynamoDB, S3 and EventBridge."""
    if service == "sqs":
        return _sqs(p, region, account)
    if service == "cloudformation":
        return _cloudformation(p, region, account)
    if service == "sts":
        return p.get("RoleArn", "*")
    if service == "secretsmanager":
        secret = p.get("SecretId")
        if not secret:
            return "*"
        if secret.startswith("arn:"):
            return secret
        known = secretsmanager_backends[account][region].secrets.get(secret)
        return known.arn if known else _arn("secretsmanager", region, account, f"secret:{secret}-??????")
    if service == "iam":
        # A call naming a role and a policy (attaching, detaching) is authorized on the role.
        if "InstanceProfileName" in p:
            return f"arn:aws:iam::{account}:instance-profile/{p['InstanceProfileName']}"
        if "RoleName" in p:
            return f"arn:aws:iam::{account}:role/{p['RoleName']}"
        return p.get("PolicyArn", "*")
    if service == "logs":
        group = p.get("logGroupName")
        # As AWS names a log group when it authorizes a call on it.
        return _arn("logs", region, account, f"log-group:{group}:*") if group else "*"
    if service == "sns":
        return p.get("TopicArn") or p.get("ResourceArn") or "*"
    if service == "cognito-idp" and "UserPoolId" in p:
        return _arn("cognito-idp", region, account, f"userpool/{p['UserPoolId']}")
    if service == "cognito-identity" and "IdentityPoolId" in p:
        return _arn("cognito-identity", region, account, f"identitypool/{p['IdentityPoolId']}")
    if "ResourceArn" in p or "ResourceARN" in p:
        return p.get("ResourceArn") or p["ResourceARN"]
    return "*"


# Bucket subresources moto's action map names wrongly or not at all: (method, query key) → the
# IAM action.
S3_SUBRESOURCES = {
    ("GET", "encryption"): "GetEncryptionConfiguration",
    ("PUT", "encryption"): "PutEncryptionConfiguration",
    ("DELETE", "encryption"): "PutEncryptionConfiguration",
    ("GET", "ownershipControls"): "GetBucketOwnershipControls",
    ("PUT", "ownershipControls"): "PutBucketOwnershipControls",
    ("DELETE", "ownershipControls"): "PutBucketOwnershipControls",
    ("GET", "replication"): "GetReplicationConfiguration",
    ("PUT", "replication"): "PutReplicationConfiguration",
    ("DELETE", "replication"): "PutReplicationConfiguration",
    ("GET", "publicAccessBlock"): "GetBucketPublicAccessBlock",
    ("PUT", "publicAccessBlock"): "PutBucketPublicAccessBlock",
    ("DELETE", "publicAccessBlock"): "PutBucketPublicAccessBlock",
}


def _s3(response, resource, method):
    action = response.data.get("Action") if isinstance(response.data, dict) else None
    action = action[0] if isinstance(action, list) else action
    if action == "DeleteObject" and method == "POST":
        # A multi-object delete: each object's own delete, of a version where one is named.
        body = response.body.decode("utf-8", "replace") if isinstance(response.body, bytes) else str(response.body)
        checks = []
        for obj in re.findall(r"<Object>(.*?)</Object>", body, re.S):
            key = unescape(re.search(r"<Key>(.*?)</Key>", obj, re.S).group(1))
            versioned = "<VersionId>" in obj
            checks.append((f"s3:DeleteObject{'Version' if versioned else ''}", f"{resource}/{key}"))
        return checks or [(f"s3:{action}", f"{resource}/*")]
    if "/" not in resource.split(":::", 1)[-1]:
        query = response.querystring or {}
        action = next((a for (m, q), a in S3_SUBRESOURCES.items() if m == method and q in query), action)
    # HeadBucket is authorized as ListBucket; listing every bucket names none.
    if action in ("HeadBucket", "ListBucket") and resource == "arn:aws:s3:::*":
        action = "ListAllMyBuckets"
    elif action == "HeadBucket":
        action = "ListBucket"
    return [(f"s3:{action or '?'}", resource)]


def checks_of(response, signing_service, action, resource, region, account):
    """The (action, resource) pairs IAM authorizes this call against."""
    if signing_service == "s3":
        return _s3(response, resource, response.method)
    prefix = PREFIXES.get(signing_service, signing_service)
    p = _params(response)
    if signing_service == "dynamodb":
        pairs = _dynamodb(action, p, region, account)
    elif signing_service == "events":
        pairs = _events(action, p, region, account)
    elif response.headers.get("X-Amz-Target") or response.method == "POST" and "Action" in p:
        pairs = [(action, _resource(signing_service, action, p, region, account))]
    else:
        pairs = [(action, _path_resource(signing_service, response.path, region, account))]
    if signing_service == "sts" and action == "AssumeRole" and any(k.startswith("Tags.member") for k in p):
        pairs.append(("TagSession", p.get("RoleArn", "*")))
    # Describing every stack (no name) needs ListStacks too, and names no stack.
    if signing_service == "cloudformation" and action == "DescribeStacks" and "StackName" not in p:
        pairs.append(("ListStacks", "*"))
    return [(f"{prefix}:{a}", r) for a, r in pairs]


# The session tags of each access key AssumeRole gave out; the tags of the AssumeRole call
# under way on this thread.
SESSION_TAGS = {}
_requested = threading.local()


def _remember_session_tags():
    """AssumeRole's session tags, kept by the access key it returns (moto keeps none)."""
    respond, assume = TokenResponse.assume_role, STSBackend.assume_role

    def responding(self):
        q = self.querystring or {}
        keys = sorted(k for k in q if re.fullmatch(r"Tags\.member\.\d+\.Key", k))
        _requested.tags = {q[k][0]: q[k.replace(".Key", ".Value")][0] for k in keys}
        try:
            return respond(self)
        finally:
            _requested.tags = {}

    def assuming(self, *args, **kwargs):
        role = assume(self, *args, **kwargs)
        SESSION_TAGS[role.access_key_id] = getattr(_requested, "tags", {})
        return role

    TokenResponse.assume_role, STSBackend.assume_role = responding, assuming


def record_to(path):
    """Records every call from now on to `path` (emptied first)."""
    out = open(path, "w", buffering=1)
    lock = threading.Lock()
    original = ActionAuthenticatorMixin._authenticate_and_authorize_action
    _remember_session_tags()

    def recorded(self, iam_request_cls, resource="*"):
        try:
            line = _line(self, resource)
        except Exception as e:  # A record that cannot be made must not fail the call.
            line = {"error": repr(e)}
        with lock:
            out.write(json.dumps(line) + "\n")
        return original(self, iam_request_cls, resource)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = recorded


def _line(response, resource):
    auth = response.headers.get("Authorization", "")
    scope = re.search(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/", auth)
    key, region, service = scope.groups() if scope else (response.get_access_key(), response.region, "?")
    account = response.current_account
    action = response._get_action()
    session = sts_backends[account]["aws"].get_assumed_role_from_access_key(key)
    return {
        "key": key,
        "account": account,
        "role": session.role_arn if session else None,
        "session": session.session_name if session else None,
        "tags": SESSION_TAGS.get(key, {}),
        "service": service,
        "operation": action,
        "checks": checks_of(response, service, action, resource, region, account),
    }
