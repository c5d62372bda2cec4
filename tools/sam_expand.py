"""Expands template.yaml with the SAM translator, offline, for deployment into the emulator.

Usage: sam_expand.py TEMPLATE CODE_BUCKET > expanded.json

Every function's local CodeUri becomes s3://CODE_BUCKET/<logical id>.zip (what `sam package`
would upload). AWS managed policies are resolved from the translator's bundled list, so no
AWS call is made.
"""
import json
import os
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class BundledPolicies:
    """Managed policy ARNs by name, as the translator needs them, without calling IAM."""

    def load(self):
        names = [
            "AWSLambdaBasicExecutionRole",
            "AWSLambdaSQSQueueExecutionRole",
            "AWSXrayWriteOnlyAccess",
            "AWSLambdaRole",
        ]
        return {n: f"arn:aws:iam::aws:policy/service-role/{n}" for n in names}


def main():
    # The translator wants a region for pseudo parameters; it makes no AWS call with it.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template_path, code_bucket = sys.argv[1], sys.argv[2]
    with open(template_path) as f:
        template = yaml_parse(f.read())
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://{code_bucket}/{logical_id}.zip"
    try:
        expanded = transform(template, {}, BundledPolicies(), Parser())
    except InvalidDocumentException as e:
        sys.exit("SAM translation failed: " + "; ".join(str(c) for c in e.causes))
    json.dump(expanded, sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main()
