"""Checks deploy/aws/shop.yaml against the shop it deploys, so the two cannot
drift apart: the security-group graph is exactly the chain of the
architecture; UserData sets every setting the shop needs for each session
store and nothing the shop does not read (the names are parsed from
examples/shop/src/config.rs); the IAM policy, the sessions table and the
Redis user match what the crates do (README.md, SECURITY.md and the
sources).

Run: python3 deploy/tests/test_template.py (needs PyYAML; scripts/test.sh
runs it in its virtual environment). Nothing here contacts AWS.
"""

import json
import re
import sys
import unittest
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "aws" / "shop.yaml"
SHOP_CONFIG = ROOT / "examples" / "shop" / "src" / "config.rs"
SHOP_SESSIONS = ROOT / "examples" / "shop" / "src" / "sessions.rs"
SHOP_CACHES = ROOT / "examples" / "shop" / "src" / "caches.rs"
DYNAMODB_STORE = ROOT / "session-stores" / "src" / "dynamodb.rs"
README = ROOT / "README.md"
SECURITY = ROOT / "SECURITY.md"

INTERNET = "0.0.0.0/0"


# ------------------------------------------------------------------ loading


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags, as {"Fn::X": ...}."""


def _tag(name):
    key = "Ref" if name == "Ref" else "Condition" if name == "Condition" else f"Fn::{name}"

    def construct(loader, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if name == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    return construct


for _name in ["Ref", "Condition", "Sub", "GetAtt", "If", "Equals", "Not", "And", "Or",
              "Select", "GetAZs", "Cidr", "Join", "Split", "Base64", "FindInMap", "ImportValue"]:
    CfnLoader.add_constructor(f"!{_name}", _tag(_name))


def load_template():
    return yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)


# ------------------------------------------------------------------ evaluating


class Evaluator:
    """Resolves the intrinsic functions UserData uses, for given parameter
    values; resources and their attributes become <Name> / <Name.Attr>."""

    PSEUDO = {"AWS::Region": "eu-west-1", "AWS::StackName": "shop", "AWS::Partition": "aws",
              "AWS::AccountId": "123456789012", "AWS::StackId": "<stack>", "AWS::NoValue": None}

    def __init__(self, template, params):
        self.template = template
        self.params = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
        self.params.update(params)

    def condition(self, name):
        return bool(self.eval(self.template["Conditions"][name]))

    def lookup(self, name):
        if name in self.PSEUDO:
            return self.PSEUDO[name]
        if name in self.params:
            return self.params[name]
        return f"<{name}>"

    def eval(self, node):
        if isinstance(node, list):
            return [self.eval(n) for n in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            return {k: self.eval(v) for k, v in node.items()}
        (key, arg), = node.items()
        if key == "Ref":
            return self.lookup(arg)
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::GetAtt":
            return f"<{'.'.join(arg)}>"
        if key == "Fn::Equals":
            a, b = self.eval(arg)
            return str(a) == str(b)
        if key == "Fn::Not":
            return not self.eval(arg[0])
        if key == "Fn::And":
            return all(self.eval(a) for a in arg)
        if key == "Fn::Or":
            return any(self.eval(a) for a in arg)
        if key == "Fn::If":
            name, yes, no = arg
            return self.eval(yes if self.condition(name) else no)
        if key == "Fn::Base64":
            return self.eval(arg)
        if key == "Fn::Join":
            sep, items = arg
            return sep.join(str(i) for i in self.eval(items))
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            values = {k: self.eval(v) for k, v in variables.items()}

            def replace(m):
                inner = m.group(1)
                if inner.startswith("!"):
                    return "${" + inner[1:] + "}"
                if inner in values:
                    return str(values[inner])
                if "." in inner and not inner.startswith("AWS::"):
                    return f"<{inner}>"
                return str(self.lookup(inner))

            return re.sub(r"\$\{([^}]+)\}", replace, text)
        return {key: self.eval(arg)}


# ------------------------------------------------------------------ the shop's side


def shop_settings():
    """The variables the shop reads: every lookup("NAME") in config.rs."""
    source = SHOP_CONFIG.read_text()
    names = set(re.findall(r'lookup\("([A-Z][A-Z0-9_]*)"\)', source))
    assert names, "no lookup(\"...\") calls found in config.rs: has the way it reads settings changed?"
    return names, source


def shop_store_names(config_source):
    return set(re.findall(r'"([a-z]+)" => StoreKind::', config_source))


def required_settings(store):
    """What an instance behind the load balancer needs, by session store."""
    required = {"SHOP_ADDR", "SHOP_INSTANCE", "SESSION_STORE", "COOKIE_SECURE", "CACHE",
                "REDIS_URL", "DATABASE_URL", "DATABASE_REPLICA_URLS"}
    if store == "dynamodb":
        required |= {"DYNAMODB_TABLE", "DYNAMODB_CREATE_TABLE", "AWS_REGION"}
    if store == "cookie":
        required |= {"COOKIE_KEYS"}
    return required


def env_block(user_data):
    """The KEY=VALUE lines of the shop's environment file in UserData."""
    m = re.search(r"cat > /etc/shop/shop\.env <<EOF\n(.*?)\nEOF\n", user_data, re.S)
    assert m, "UserData no longer writes /etc/shop/shop.env with a heredoc"
    lines = [l for l in m.group(1).splitlines() if l.strip()]
    pairs = []
    for line in lines:
        k, sep, v = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", k), f"not KEY=VALUE: {line!r}"
        pairs.append((k, v))
    return pairs


# ------------------------------------------------------------------ tests


def group_of(ref):
    """The security group a GroupId / SourceSecurityGroupId names."""
    if isinstance(ref, dict) and "Fn::GetAtt" in ref:
        return ref["Fn::GetAtt"][0]
    if isinstance(ref, dict) and "Ref" in ref:
        return ref["Ref"]
    raise AssertionError(f"security group given as {ref!r}")


def peer(rule, direction):
    for key in ("CidrIp", "CidrIpv6"):
        if key in rule:
            return rule[key]
    if direction == "in":
        return group_of(rule["SourceSecurityGroupId"])
    if "DestinationPrefixListId" in rule:
        return f"prefix-list:{rule['DestinationPrefixListId']['Ref']}"
    return group_of(rule["DestinationSecurityGroupId"])


class TemplateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = load_template()
        cls.r = cls.t["Resources"]

    def of_type(self, kind):
        return {n: r for n, r in self.r.items() if r["Type"] == kind}

    def rules(self):
        """(direction, group, peer, from port, to port) of every rule."""
        out = set()
        for name, res in self.of_type("AWS::EC2::SecurityGroup").items():
            for d, key in (("in", "SecurityGroupIngress"), ("out", "SecurityGroupEgress")):
                for rule in res["Properties"].get(key, []):
                    out.add((d, name, peer(rule, d), rule.get("FromPort"), rule.get("ToPort")))
        for kind, d in (("AWS::EC2::SecurityGroupIngress", "in"), ("AWS::EC2::SecurityGroupEgress", "out")):
            for res in self.of_type(kind).values():
                p = res["Properties"]
                out.add((d, group_of(p["GroupId"]), peer(p, d), p.get("FromPort"), p.get("ToPort")))
        return out

    def test_security_groups_are_exactly_the_chain(self):
        ingress = {(g, src, lo) for d, g, src, lo, hi in self.rules() if d == "in"}
        self.assertEqual(ingress, {
            ("AlbSecurityGroup", INTERNET, 443),
            ("AlbSecurityGroup", INTERNET, 80),
            ("AppSecurityGroup", "AlbSecurityGroup", 3000),
            ("CacheSecurityGroup", "AppSecurityGroup", 6379),
            ("DbSecurityGroup", "AppSecurityGroup", 5432),
            # The AWS API endpoints the app calls (no NAT, no internet).
            ("EndpointSecurityGroup", "AppSecurityGroup", 443),
        })
        for d, g, p, lo, hi in self.rules():
            self.assertEqual(lo, hi, f"{g}: one port per rule")
            if p in (INTERNET, "::/0"):
                self.assertEqual((d, g), ("in", "AlbSecurityGroup"), f"{p} only into the load balancer")

    def test_egress_goes_only_down_the_chain(self):
        egress = {(g, dst, lo) for d, g, dst, lo, hi in self.rules() if d == "out"}
        self.assertEqual(egress, {
            ("AlbSecurityGroup", "AppSecurityGroup", 3000),
            ("AppSecurityGroup", "CacheSecurityGroup", 6379),
            ("AppSecurityGroup", "DbSecurityGroup", 5432),
            ("AppSecurityGroup", "EndpointSecurityGroup", 443),
            ("AppSecurityGroup", "prefix-list:S3PrefixListId", 443),
            ("AppSecurityGroup", "prefix-list:DynamoDbPrefixListId", 443),
            # A rule that matches nothing leaves a group without egress.
            ("CacheSecurityGroup", "127.0.0.1/32", None),
            ("DbSecurityGroup", "127.0.0.1/32", None),
            ("EndpointSecurityGroup", "127.0.0.1/32", None),
        })

    def test_each_tier_sits_in_its_group(self):
        def groups(resource, key):
            return {group_of(g) for g in self.r[resource]["Properties"][key]}

        self.assertEqual(groups("LoadBalancer", "SecurityGroups"), {"AlbSecurityGroup"})
        lt = self.r["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
        self.assertEqual({group_of(g) for g in lt["SecurityGroupIds"]}, {"AppSecurityGroup"})
        self.assertEqual(groups("Redis", "SecurityGroupIds"), {"CacheSecurityGroup"})
        self.assertEqual(groups("Database", "VPCSecurityGroups"), {"DbSecurityGroup"})
        self.assertEqual(groups("DatabaseReplica", "VPCSecurityGroups"), {"DbSecurityGroup"})
        for name, ep in self.of_type("AWS::EC2::VPCEndpoint").items():
            if ep["Properties"]["VpcEndpointType"] == "Interface":
                self.assertEqual(groups(name, "SecurityGroupIds"), {"EndpointSecurityGroup"}, name)

    def user_data(self, store):
        params = {"SessionStore": store}
        if store == "cookie":
            params["CookieKeysParameter"] = "/shop/cookie-keys"
        lt = self.r["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
        return Evaluator(self.t, params).eval(lt["UserData"])

    def test_user_data_sets_what_the_shop_reads_and_nothing_else(self):
        known, source = shop_settings()
        aws_prefix = "`AWS_*`" in source  # config.rs: region and credentials from AWS_*
        stores = self.t["Parameters"]["SessionStore"]["AllowedValues"]
        self.assertTrue(set(stores) <= shop_store_names(source), "a store the shop does not know")
        for store in stores:
            with self.subTest(store=store):
                pairs = env_block(self.user_data(store))
                keys = [k for k, _ in pairs]
                self.assertEqual(len(keys), len(set(keys)), f"a setting twice: {keys}")
                unknown = {k for k in keys if k not in known and not (aws_prefix and k.startswith("AWS_"))}
                self.assertEqual(unknown, set(), "UserData sets what the shop does not read")
                required = required_settings(store)
                self.assertTrue({k for k in required if not k.startswith("AWS_")} <= known,
                                f"the shop no longer reads {required - known}")
                self.assertEqual(required - set(keys), set(), f"missing for SESSION_STORE={store}")
                env = dict(pairs)
                self.assertEqual(env["SESSION_STORE"], store)
                self.assertEqual(env["SHOP_ADDR"], "0.0.0.0:3000")
                port = self.r["TargetGroup"]["Properties"]["Port"]
                self.assertTrue(env["SHOP_ADDR"].endswith(f":{port}"), "listens where the target group sends")
                # Secrets come from shell variables filled from Secrets
                # Manager / SSM at boot, never from the template.
                self.assertIn("${redis_password}", env["REDIS_URL"])
                self.assertTrue(env["REDIS_URL"].startswith("rediss://"), "TLS to ElastiCache")
                # Session writes wait for a replica by default, and the
                # default asks for no more replicas than the default AZs give.
                params = self.t["Parameters"]
                wait = params["SessionWriteReplicas"]["Default"]
                self.assertEqual(env["REDIS_WAIT_REPLICAS"], wait)
                self.assertGreaterEqual(int(wait), 1)
                self.assertLess(int(wait), int(params["AzCount"]["Default"]))
                for var in ("DATABASE_URL", "DATABASE_REPLICA_URLS"):
                    self.assertIn("${db_password}", env[var])
                    self.assertIn("${db_tls}", env[var])
                if store == "cookie":
                    self.assertEqual(env["COOKIE_KEYS"], "${cookie_keys}")
                if store == "dynamodb":
                    self.assertEqual(env["DYNAMODB_CREATE_TABLE"], "false")
                    self.assertEqual(env["DYNAMODB_TABLE"], "<SessionsTable>")

    def test_no_secret_is_a_parameter(self):
        for name, p in self.t["Parameters"].items():
            self.assertNotRegex(name.lower(), r"password|secret|token|keys$", name)
            self.assertNotIn("NoEcho", p, name)
        text = TEMPLATE.read_text()
        self.assertIn("secretsmanager get-secret-value", text)
        self.assertIn("ssm get-parameter --region \"$region\" --with-decryption", text)

    def test_health_check_is_healthz(self):
        tg = self.r["TargetGroup"]["Properties"]
        self.assertEqual(tg["HealthCheckPath"], "/healthz")
        routes = (ROOT / "examples" / "shop" / "src" / "routes" / "mod.rs").read_text()
        self.assertIn('.route("/healthz"', routes)
        self.assertEqual(self.r["AppGroup"]["Properties"]["HealthCheckType"], "ELB")

    def test_instance_role_is_least_privilege(self):
        role = self.r["AppRole"]["Properties"]
        statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        flat = []
        for s in statements:
            if "Fn::If" in s:
                flat.append(s["Fn::If"][1])
            else:
                flat.append(s)
        for s in flat:
            self.assertEqual(s["Effect"], "Allow")
            self.assertNotEqual(s["Resource"], "*", s["Sid"])
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            self.assertFalse(any("*" in a for a in actions), s["Sid"])
        dynamo = [s for s in flat if any(a.startswith("dynamodb:") for a in s["Action"])]
        self.assertEqual(len(dynamo), 1)
        readme_policy = json.loads(re.search(r"```json\n(.*?)```", README.read_text(), re.S).group(1))
        self.assertEqual(sorted(dynamo[0]["Action"]), sorted(readme_policy["Statement"][0]["Action"]),
                         "the four actions of README.md's policy")
        self.assertEqual(dynamo[0]["Resource"], {"Fn::GetAtt": ["SessionsTable", "Arn"]})
        self.assertEqual(role["ManagedPolicyArns"][0]["Fn::Sub"].rsplit("/", 1)[1],
                         "AmazonSSMManagedInstanceCore", "Session Manager instead of a bastion")
        self.assertEqual(self.of_type("AWS::EC2::Instance"), {}, "no bastion host")

    def test_sessions_table_matches_the_store(self):
        store = DYNAMODB_STORE.read_text()
        key = re.search(r'key: "([a-z_]+)"\.into\(\)', store).group(1)
        expiry = re.search(r'expiry: "([a-z_]+)"\.into\(\)', store).group(1)
        table = self.r["SessionsTable"]["Properties"]
        self.assertEqual(table["KeySchema"], [{"AttributeName": key, "KeyType": "HASH"}])
        self.assertEqual(table["TimeToLiveSpecification"], {"AttributeName": expiry, "Enabled": True})
        self.assertTrue(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"])

    def test_redis_user_is_limited_to_the_shop(self):
        access = self.r["RedisAppUser"]["Properties"]["AccessString"].split()
        prefix = re.search(r'with_key_prefix\("([^"]+)"\)', SHOP_SESSIONS.read_text()).group(1)
        caches = re.findall(r'CacheBuilder::new\("([^"]+)"\)', SHOP_CACHES.read_text())
        keys = {a[1:] for a in access if a.startswith("~")}
        self.assertEqual(keys, {prefix + "*"} | {c + "*" for c in caches})
        self.assertEqual({a[1:] for a in access if a.startswith("&")}, {c + ":invalidate" for c in caches})
        self.assertIn("-@all", access)
        self.assertNotIn("+@all", access)
        acl = re.search(r"ACL SETUSER sessions .*", SECURITY.read_text()).group(0).split()
        session_commands = {a for a in acl if a.startswith("+")}
        self.assertTrue(session_commands <= set(access), session_commands - set(access))
        default = self.r["RedisDefaultUser"]["Properties"]
        self.assertEqual((default["UserName"], default["AccessString"].split()[0]), ("default", "off"))
        group = self.r["Redis"]["Properties"]
        for flag in ("MultiAZEnabled", "AutomaticFailoverEnabled", "TransitEncryptionEnabled",
                     "AtRestEncryptionEnabled"):
            self.assertIs(group[flag], True, flag)

    def test_database_is_multi_az_private_encrypted_with_a_replica(self):
        db = self.r["Database"]["Properties"]
        self.assertIs(db["MultiAZ"], True)
        self.assertIs(db["PubliclyAccessible"], False)
        self.assertIs(db["StorageEncrypted"], True)
        self.assertIn("{{resolve:secretsmanager:${DbSecret}", db["MasterUserPassword"]["Fn::Sub"])
        replica = self.r["DatabaseReplica"]["Properties"]
        self.assertEqual(replica["SourceDBInstanceIdentifier"], {"Ref": "Database"})
        self.assertIs(replica["PubliclyAccessible"], False)

    def test_load_balancer_https_redirect_stickiness_and_waf(self):
        https = self.r["HttpsListener"]["Properties"]
        self.assertEqual((https["Port"], https["Protocol"]), (443, "HTTPS"))
        self.assertEqual(https["Certificates"], [{"CertificateArn": {"Ref": "CertificateArn"}}])
        redirect = self.r["HttpListener"]["Properties"]["DefaultActions"][0]
        self.assertEqual((redirect["Type"], redirect["RedirectConfig"]["Protocol"]), ("redirect", "HTTPS"))
        attrs = {a["Key"]: a["Value"] for a in self.r["TargetGroup"]["Properties"]["TargetGroupAttributes"]}
        self.assertEqual(attrs["stickiness.type"], "lb_cookie")
        self.assertEqual(attrs["stickiness.lb_cookie.duration_seconds"], {"Ref": "StickinessSeconds"})
        rules = self.r["WebAcl"]["Properties"]["Rules"]
        names = {r["Statement"].get("ManagedRuleGroupStatement", {}).get("Name") for r in rules}
        self.assertIn("AWSManagedRulesCommonRuleSet", names)
        self.assertTrue(any("RateBasedStatement" in r["Statement"] for r in rules))
        assoc = self.r["WebAclAssociation"]["Properties"]
        self.assertEqual(assoc["ResourceArn"], {"Ref": "LoadBalancer"})

    def test_every_checkov_skip_has_a_reason(self):
        for name, res in self.r.items():
            for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
                self.assertRegex(skip["id"], r"^CKV2?_AWS_\d+$", name)
                self.assertGreater(len(skip.get("comment", "")), 20, f"{name}: {skip['id']} needs a reason")


def failed_tests(result):
    """The test methods that failed, counting a method once however many of
    its subtests failed."""
    ids = set()
    for test, _ in result.failures + result.errors:
        ids.add(getattr(test, "test_case", test).id())
    return ids


if __name__ == "__main__":
    runner = unittest.TextTestRunner(verbosity=2)
    result = runner.run(unittest.defaultTestLoader.loadTestsFromTestCase(TemplateTest))
    failed = len(failed_tests(result))
    passed = result.testsRun - failed - len(result.skipped)
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 and result.testsRun > 0 else 1)
