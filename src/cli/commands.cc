#include "cli/commands.h"

#include <unistd.h>

#include <fstream>
#include <functional>
#include <iostream>

#include <boost/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "audit/chain.h"
#include "cli/client.h"
#include "core/strings.h"

namespace ward::cli {
namespace {

namespace json = boost::json;

// Options every client command shares.
struct Common {
  ClientSettings settings;
  std::string format = "table";  // table | json
};

void AddCommon(CLI::App* cmd, Common& c) {
  cmd->add_option("--address", c.settings.address, "Ward address (WARD_ADDR, VAULT_ADDR)");
  cmd->add_option("--ca-cert", c.settings.ca_cert, "CA certificate file (WARD_CACERT, VAULT_CACERT)");
  cmd->add_flag("--tls-skip-verify", c.settings.tls_skip_verify, "Do not verify the server certificate");
  cmd->add_option("--client-cert", c.settings.client_cert,
                  "Client certificate (PEM) for mutual TLS (WARD_CLIENT_CERT, VAULT_CLIENT_CERT)");
  cmd->add_option("--client-key", c.settings.client_key,
                  "Key of the client certificate (WARD_CLIENT_KEY, VAULT_CLIENT_KEY)");
  cmd->add_option("--format", c.format, "Output format: table or json")
      ->check(CLI::IsMember({"table", "json"}));
}

int Fail(const absl::Status& status) {
  std::cerr << "Error: " << status.message() << "\n";
  return status.code() == absl::StatusCode::kNotFound ? 2 : 1;
}

absl::StatusOr<std::unique_ptr<ApiClient>> Connect(const Common& c) {
  return ApiClient::Create(ResolveSettings(c.settings));
}

json::value ParseOrNull(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  return ec ? json::value(nullptr) : v;
}

std::string ScalarText(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "n/a";
  return json::serialize(v);
}

// Prints a JSON object as a two-column Key/Value table, keys sorted.
void PrintTable(const json::object& o) {
  std::vector<std::string> keys;
  size_t width = 3;
  for (const auto& kv : o) {
    keys.emplace_back(kv.key());
    width = std::max(width, kv.key().size());
  }
  std::sort(keys.begin(), keys.end());
  std::cout << "Key" << std::string(width - 3 + 4, ' ') << "Value\n"
            << "---" << std::string(width - 3 + 4, ' ') << "-----\n";
  for (const std::string& k : keys) {
    std::cout << k << std::string(width - k.size() + 4, ' ') << ScalarText(o.at(k)) << "\n";
  }
}

void PrintReply(const Common& c, const ApiReply& reply, const char* section = "data") {
  if (reply.status < 0) return;  // the command printed its own output
  if (reply.body.empty()) {
    if (c.format == "json") std::cout << "{}\n";
    else std::cout << "Success!\n";
    return;
  }
  json::value v = ParseOrNull(reply.body);
  if (c.format == "json") {
    std::cout << reply.body;
    if (reply.body.back() != '\n') std::cout << "\n";
    return;
  }
  if (v.is_object() && v.as_object().contains(section) && v.as_object().at(section).is_object()) {
    PrintTable(v.as_object().at(section).as_object());
  } else if (v.is_object()) {
    PrintTable(v.as_object());
  } else {
    std::cout << reply.body << "\n";
  }
}

// Parses "k=v" arguments into a JSON object; a value "-" reads stdin, "@file" reads a file.
absl::StatusOr<json::object> KeyValues(const std::vector<std::string>& args) {
  json::object o;
  for (const std::string& a : args) {
    size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("expected key=value, got \"", a, "\""));
    }
    std::string value = a.substr(eq + 1);
    if (value == "-") {
      value.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
      while (!value.empty() && value.back() == '\n') value.pop_back();
    } else if (value.size() > 1 && value[0] == '@') {
      // As Vault's CLI: the value is the file's contents (e.g. csr=@req.pem), unchanged.
      std::ifstream in(value.substr(1), std::ios::binary);
      if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", value.substr(1)));
      value.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    o[a.substr(0, eq)] = value;
  }
  return o;
}

// Resolves "secret/foo" into the KV v2 mount and the secret's path within it, the way the
// Vault CLI does: ask sys/internal/ui/mounts, or take -mount.
struct KvPath {
  std::string mount;  // "secret/"
  std::string path;   // "foo"
};

absl::StatusOr<KvPath> ResolveKv(ApiClient& client, const std::string& mount_flag,
                                 const std::string& arg) {
  std::string path = arg;
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  if (!mount_flag.empty()) {
    std::string m = mount_flag;
    if (m.back() != '/') m.push_back('/');
    return KvPath{m, path};
  }
  auto reply = client.Call("GET", absl::StrCat("sys/internal/ui/mounts/", path));
  if (!reply.ok()) return reply.status();
  json::value v = ParseOrNull(reply->body);
  if (!v.is_object() || !v.as_object().contains("data")) {
    return absl::InternalError("unexpected reply from sys/internal/ui/mounts");
  }
  const json::value& data = v.as_object().at("data");
  std::string mount = data.is_object() && data.as_object().contains("path")
                          ? std::string(data.as_object().at("path").as_string())
                          : "";
  if (mount.empty() || !absl::StartsWith(path + "/", mount)) {
    return absl::InvalidArgumentError(absl::StrCat("no KV mount found for \"", path, "\""));
  }
  return KvPath{mount, path.size() > mount.size() ? path.substr(mount.size()) : ""};
}

std::string VersionsBody(const std::string& versions) {
  json::array a;
  for (absl::string_view part : absl::StrSplit(versions, ',', absl::SkipWhitespace())) {
    a.emplace_back(std::string(part));
  }
  return json::serialize(json::object{{"versions", a}});
}

void AddKv(CLI::App& app, std::shared_ptr<int> rc) {
  CLI::App* kv = app.add_subcommand("kv", "Read and write KV v2 secrets");
  kv->require_subcommand(1);

  struct KvArgs {
    Common common;
    std::string mount;
    std::string path;
    std::vector<std::string> pairs;
    int64_t version = 0;
    int64_t cas = -1;
    std::string versions;
  };

  // Registers one kv subcommand whose body `run` receives a connected client and resolved path.
  auto add = [&](const char* name, const char* help, bool pairs, bool version, bool cas,
                 bool versions, std::function<absl::StatusOr<ApiReply>(ApiClient&, KvPath&, KvArgs&)> run,
                 const char* section = "data") {
    auto args = std::make_shared<KvArgs>();
    CLI::App* cmd = kv->add_subcommand(name, help);
    AddCommon(cmd, args->common);
    cmd->add_option("--mount", args->mount, "KV v2 mount path (default: found from the path)");
    cmd->add_option("path", args->path, "Secret path, e.g. secret/app/db")->required();
    if (pairs) cmd->add_option("pairs", args->pairs, "key=value pairs");
    if (version) cmd->add_option("--version", args->version, "Version to read (0: current)");
    if (cas) cmd->add_option("--cas", args->cas, "Check-and-set: the version this write expects");
    if (versions) cmd->add_option("--versions", args->versions, "Comma-separated version numbers");
    cmd->callback([args, run, rc, section]() {
      auto client = Connect(args->common);
      if (!client.ok()) { *rc = Fail(client.status()); return; }
      auto path = ResolveKv(**client, args->mount, args->path);
      if (!path.ok()) { *rc = Fail(path.status()); return; }
      auto reply = run(**client, *path, *args);
      if (!reply.ok()) { *rc = Fail(reply.status()); return; }
      PrintReply(args->common, *reply, section);
    });
  };

  auto write = [](bool patch) {
    return [patch](ApiClient& c, KvPath& p, KvArgs& a) -> absl::StatusOr<ApiReply> {
      auto data = KeyValues(a.pairs);
      if (!data.ok()) return data.status();
      if (data->empty()) return absl::InvalidArgumentError("must supply data (key=value pairs)");
      json::object body{{"data", *data}};
      if (a.cas >= 0) body["options"] = json::object{{"cas", a.cas}};
      std::string text = json::serialize(body);
      return c.Call(patch ? "PATCH" : "PUT", absl::StrCat(p.mount, "data/", p.path), text,
                    patch ? "application/merge-patch+json" : "application/json");
    };
  };
  add("put", "Write a new version of a secret", true, false, true, false, write(false));
  add("patch", "Merge key=value pairs into the current version", true, false, true, false, write(true));
  add("get", "Read a secret", false, true, false, false,
      [](ApiClient& c, KvPath& p, KvArgs& a) -> absl::StatusOr<ApiReply> {
        std::string target = absl::StrCat(p.mount, "data/", p.path);
        if (a.version > 0) absl::StrAppend(&target, "?version=", a.version);
        auto reply = c.Call("GET", target);
        if (!reply.ok()) return reply;
        if (a.common.format == "json") return reply;
        // Table output shows the secret's own key/value pairs, as `vault kv get` does.
        json::value v = ParseOrNull(reply->body);
        json::object inner;
        if (v.is_object() && v.as_object().contains("data") && v.as_object().at("data").is_object()) {
          const json::object& d = v.as_object().at("data").as_object();
          if (d.contains("data") && d.at("data").is_object()) inner = d.at("data").as_object();
        }
        reply->body = json::serialize(json::object{{"data", inner}});
        return reply;
      });
  add("delete", "Soft-delete the latest version (or -versions)", false, false, false, true,
      [](ApiClient& c, KvPath& p, KvArgs& a) -> absl::StatusOr<ApiReply> {
        if (a.versions.empty()) return c.Call("DELETE", absl::StrCat(p.mount, "data/", p.path));
        return c.Call("PUT", absl::StrCat(p.mount, "delete/", p.path), VersionsBody(a.versions));
      });
  add("undelete", "Restore soft-deleted versions", false, false, false, true,
      [](ApiClient& c, KvPath& p, KvArgs& a) -> absl::StatusOr<ApiReply> {
        if (a.versions.empty()) return absl::InvalidArgumentError("-versions is required");
        return c.Call("PUT", absl::StrCat(p.mount, "undelete/", p.path), VersionsBody(a.versions));
      });
  add("destroy", "Permanently destroy versions", false, false, false, true,
      [](ApiClient& c, KvPath& p, KvArgs& a) -> absl::StatusOr<ApiReply> {
        if (a.versions.empty()) return absl::InvalidArgumentError("-versions is required");
        return c.Call("PUT", absl::StrCat(p.mount, "destroy/", p.path), VersionsBody(a.versions));
      });
  add("list", "List keys under a folder", false, false, false, false,
      [](ApiClient& c, KvPath& p, KvArgs& a) -> absl::StatusOr<ApiReply> {
        auto reply = c.Call("LIST", absl::StrCat(p.mount, "metadata/", p.path));
        if (!reply.ok() || a.common.format == "json") return reply;
        json::value v = ParseOrNull(reply->body);
        std::string out = "Keys\n----\n";
        if (v.is_object() && v.as_object().contains("data")) {
          for (const auto& k : v.as_object().at("data").as_object().at("keys").as_array()) {
            absl::StrAppend(&out, std::string(k.as_string()), "\n");
          }
        }
        std::cout << out;
        reply->body.clear();
        reply->status = -1;
        return reply;
      });

  // kv metadata get|put|delete
  CLI::App* meta = kv->add_subcommand("metadata", "Read and write secret metadata");
  meta->require_subcommand(1);
  struct MetaArgs {
    Common common;
    std::string mount, path;
    int64_t max_versions = -1;
    std::string cas_required, delete_version_after;
    std::vector<std::string> custom;
  };
  for (const char* name : {"get", "put", "delete"}) {
    auto args = std::make_shared<MetaArgs>();
    CLI::App* cmd = meta->add_subcommand(name, std::string("Metadata ") + name);
    AddCommon(cmd, args->common);
    cmd->add_option("--mount", args->mount, "KV v2 mount path");
    cmd->add_option("path", args->path, "Secret path")->required();
    std::string op = name;
    if (op == "put") {
      cmd->add_option("--max-versions", args->max_versions, "Versions to keep");
      cmd->add_option("--cas-required", args->cas_required, "true or false");
      cmd->add_option("--delete-version-after", args->delete_version_after, "e.g. 30m");
      cmd->add_option("--custom-metadata", args->custom, "key=value (repeatable)");
    }
    cmd->callback([args, op, rc]() {
      auto client = Connect(args->common);
      if (!client.ok()) { *rc = Fail(client.status()); return; }
      auto path = ResolveKv(**client, args->mount, args->path);
      if (!path.ok()) { *rc = Fail(path.status()); return; }
      std::string target = absl::StrCat(path->mount, "metadata/", path->path);
      absl::StatusOr<ApiReply> reply;
      if (op == "get") {
        reply = (*client)->Call("GET", target);
      } else if (op == "delete") {
        reply = (*client)->Call("DELETE", target);
      } else {
        json::object body;
        if (args->max_versions >= 0) body["max_versions"] = args->max_versions;
        if (!args->cas_required.empty()) body["cas_required"] = args->cas_required == "true";
        if (!args->delete_version_after.empty()) body["delete_version_after"] = args->delete_version_after;
        if (!args->custom.empty()) {
          auto custom = KeyValues(args->custom);
          if (!custom.ok()) { *rc = Fail(custom.status()); return; }
          body["custom_metadata"] = *custom;
        }
        reply = (*client)->Call("PUT", target, json::serialize(body));
      }
      if (!reply.ok()) { *rc = Fail(reply.status()); return; }
      PrintReply(args->common, *reply);
    });
  }
}

void AddToken(CLI::App& app, std::shared_ptr<int> rc) {
  CLI::App* token = app.add_subcommand("token", "Create, look up, renew and revoke tokens");
  token->require_subcommand(1);

  struct CreateArgs {
    Common common;
    std::vector<std::string> policies, metadata;
    std::string ttl, explicit_max_ttl, display_name, id;
    int64_t num_uses = 0;
    bool orphan = false, no_default_policy = false;
    std::string renewable;
  };
  auto ca = std::make_shared<CreateArgs>();
  CLI::App* create = token->add_subcommand("create", "Create a child token");
  AddCommon(create, ca->common);
  create->add_option("--policy", ca->policies, "Policy (repeatable)");
  create->add_option("--ttl", ca->ttl, "Initial TTL, e.g. 1h");
  create->add_option("--explicit-max-ttl", ca->explicit_max_ttl, "Hard TTL cap");
  create->add_option("--display-name", ca->display_name, "Display name");
  create->add_option("--id", ca->id, "Token value (root only)");
  create->add_option("--use-limit", ca->num_uses, "Number of uses (0: unlimited)");
  create->add_option("--metadata", ca->metadata, "key=value (repeatable)");
  create->add_option("--renewable", ca->renewable, "true or false");
  create->add_flag("--orphan", ca->orphan, "Create without a parent");
  create->add_flag("--no-default-policy", ca->no_default_policy, "Omit the default policy");
  create->callback([ca, rc]() {
    auto client = Connect(ca->common);
    if (!client.ok()) { *rc = Fail(client.status()); return; }
    json::object body;
    if (!ca->policies.empty()) {
      json::array p;
      for (const auto& s : ca->policies) p.emplace_back(s);
      body["policies"] = p;
    }
    if (!ca->ttl.empty()) body["ttl"] = ca->ttl;
    if (!ca->explicit_max_ttl.empty()) body["explicit_max_ttl"] = ca->explicit_max_ttl;
    if (!ca->display_name.empty()) body["display_name"] = ca->display_name;
    if (!ca->id.empty()) body["id"] = ca->id;
    if (ca->num_uses > 0) body["num_uses"] = ca->num_uses;
    if (!ca->renewable.empty()) body["renewable"] = ca->renewable == "true";
    if (ca->no_default_policy) body["no_default_policy"] = true;
    if (!ca->metadata.empty()) {
      auto meta = KeyValues(ca->metadata);
      if (!meta.ok()) { *rc = Fail(meta.status()); return; }
      body["meta"] = *meta;
    }
    auto reply = (*client)->Call("PUT", ca->orphan ? "auth/token/create-orphan" : "auth/token/create",
                                 json::serialize(body));
    if (!reply.ok()) { *rc = Fail(reply.status()); return; }
    PrintReply(ca->common, *reply, "auth");
  });

  struct TokenArgs {
    Common common;
    std::string token, increment;
    bool accessor = false, self = false;
  };
  for (const char* name : {"lookup", "renew", "revoke"}) {
    auto args = std::make_shared<TokenArgs>();
    std::string op = name;
    CLI::App* cmd = token->add_subcommand(name, op + " a token (default: the current one)");
    AddCommon(cmd, args->common);
    cmd->add_option("token", args->token, "Token (or accessor with -accessor)");
    cmd->add_flag("--accessor", args->accessor, "The argument is an accessor");
    if (op == "renew") cmd->add_option("--increment", args->increment, "Requested TTL extension");
    if (op == "revoke") cmd->add_flag("--self", args->self, "Revoke the current token");
    cmd->callback([args, op, rc]() {
      auto client = Connect(args->common);
      if (!client.ok()) { *rc = Fail(client.status()); return; }
      absl::StatusOr<ApiReply> reply;
      bool self = args->token.empty() || args->self;
      std::string key = args->accessor ? "accessor" : "token";
      std::string body = json::serialize(json::object{{key, args->token}});
      if (op == "lookup") {
        reply = self ? (*client)->Call("GET", "auth/token/lookup-self")
                     : (*client)->Call("PUT", args->accessor ? "auth/token/lookup-accessor"
                                                             : "auth/token/lookup", body);
      } else if (op == "renew") {
        json::object b;
        if (!args->increment.empty()) b["increment"] = args->increment;
        if (!self) b["token"] = args->token;
        reply = (*client)->Call("PUT", self ? "auth/token/renew-self" : "auth/token/renew",
                                json::serialize(b));
      } else {
        reply = self ? (*client)->Call("PUT", "auth/token/revoke-self")
                     : (*client)->Call("PUT", args->accessor ? "auth/token/revoke-accessor"
                                                             : "auth/token/revoke", body);
      }
      if (!reply.ok()) { *rc = Fail(reply.status()); return; }
      PrintReply(args->common, *reply, op == "renew" ? "auth" : "data");
    });
  }
}

void AddOperator(CLI::App& app, std::shared_ptr<int> rc) {
  CLI::App* op = app.add_subcommand("operator", "Initialise, unseal, seal and rotate");
  op->require_subcommand(1);

  struct InitArgs {
    Common common;
    int shares = 5, threshold = 3;
  };
  auto ia = std::make_shared<InitArgs>();
  CLI::App* init = op->add_subcommand("init", "Initialise a new server");
  AddCommon(init, ia->common);
  init->add_option("--key-shares", ia->shares, "Number of unseal key shares")->capture_default_str();
  init->add_option("--key-threshold", ia->threshold, "Shares needed to unseal")->capture_default_str();
  init->callback([ia, rc]() {
    auto client = Connect(ia->common);
    if (!client.ok()) { *rc = Fail(client.status()); return; }
    auto reply = (*client)->Call(
        "PUT", "sys/init",
        json::serialize(json::object{{"secret_shares", ia->shares}, {"secret_threshold", ia->threshold}}));
    if (!reply.ok()) { *rc = Fail(reply.status()); return; }
    if (ia->common.format == "json") {
      std::cout << reply->body;
      return;
    }
    json::value v = ParseOrNull(reply->body);
    int i = 1;
    for (const auto& k : v.as_object().at("keys_base64").as_array()) {
      std::cout << "Unseal Key " << i++ << ": " << std::string(k.as_string()) << "\n";
    }
    std::cout << "\nInitial Root Token: " << std::string(v.as_object().at("root_token").as_string())
              << "\n\nWard is initialised with " << ia->shares << " key shares and a threshold of "
              << ia->threshold << ". Unseal it with `ward operator unseal` " << ia->threshold
              << " times, with different keys.\n";
  });

  struct UnsealArgs {
    Common common;
    std::string key;
    bool reset = false;
  };
  auto ua = std::make_shared<UnsealArgs>();
  CLI::App* unseal = op->add_subcommand("unseal", "Provide one unseal key share");
  AddCommon(unseal, ua->common);
  unseal->add_option("key", ua->key, "Key share (read from stdin if omitted)");
  unseal->add_flag("--reset", ua->reset, "Discard the shares entered so far");
  unseal->callback([ua, rc]() {
    auto client = Connect(ua->common);
    if (!client.ok()) { *rc = Fail(client.status()); return; }
    json::object body;
    if (ua->reset) {
      body["reset"] = true;
    } else {
      std::string key = ua->key;
      if (key.empty()) {
        if (isatty(0)) std::cerr << "Unseal Key (will be hidden): ";
        std::getline(std::cin, key);
      }
      body["key"] = key;
    }
    auto reply = (*client)->Call("PUT", "sys/unseal", json::serialize(body));
    if (!reply.ok()) { *rc = Fail(reply.status()); return; }
    PrintReply(ua->common, *reply);
  });

  for (const char* name : {"seal", "rotate"}) {
    auto common = std::make_shared<Common>();
    std::string n = name;
    CLI::App* cmd = op->add_subcommand(name, n == "seal" ? "Seal the server" : "Add a new encryption key term");
    AddCommon(cmd, *common);
    cmd->callback([common, n, rc]() {
      auto client = Connect(*common);
      if (!client.ok()) { *rc = Fail(client.status()); return; }
      auto reply = (*client)->Call("PUT", n == "seal" ? "sys/seal" : "sys/rotate");
      if (!reply.ok()) { *rc = Fail(reply.status()); return; }
      if (n == "rotate") {
        auto status = (*client)->Call("GET", "sys/key-status");
        if (status.ok()) {
          PrintReply(*common, *status);
          return;
        }
      }
      std::cout << (n == "seal" ? "Success! Ward is sealed.\n" : "Success! Rotated the encryption key.\n");
    });
  }
}

// `ward audit verify FILE... [--key HEX] [--allow-open-tail]`: checks audit files offline
// (docs/audit.md). Several files are taken oldest first, as log rotation left them: each is
// verified on its own and each must continue the one before it. Exit 0 if intact, 1 if a
// problem was found, 2 if a file cannot be read.
void AddAudit(CLI::App& app, std::shared_ptr<int> rc) {
  CLI::App* audit_cmd = app.add_subcommand("audit", "Audit log tools");
  audit_cmd->require_subcommand(1);
  struct VerifyArgs {
    std::vector<std::string> files;
    audit::VerifyOptions options;
  };
  auto va = std::make_shared<VerifyArgs>();
  CLI::App* verify = audit_cmd->add_subcommand(
      "verify", "Check audit files' hash chain and (with --key) their checkpoint signatures");
  verify->add_option("files", va->files, "The audit file(s), oldest first if rotated")->required();
  verify->add_option("--key", va->options.public_key_hex,
                     "Hex Ed25519 checkpoint public key (GET sys/audit: checkpoint_public_key)");
  verify->add_flag("--allow-open-tail", va->options.allow_open_tail,
                   "Accept records after the last checkpoint (a file still being written)");
  verify->callback([va, rc]() {
    std::optional<audit::VerifyReport> previous;
    for (size_t i = 0; i < va->files.size(); ++i) {
      const std::string& file = va->files[i];
      // Only the newest file may still be open for writing.
      audit::VerifyOptions options = va->options;
      options.allow_open_tail = va->options.allow_open_tail && i + 1 == va->files.size();
      auto report = audit::VerifyFile(file, options);
      if (!report.ok()) {
        std::cerr << "Error: " << file << ": " << report.status().message() << "\n";
        *rc = 2;
        return;
      }
      if (va->files.size() > 1) std::cout << file << ": ";
      std::cout << "Lines: " << report->lines << ", records: " << report->records
                << ", checkpoints: " << report->checkpoints;
      if (va->options.public_key_hex.empty()) {
        std::cout << " (signatures not checked: no --key; the hash chain alone cannot detect a "
                     "rewritten file)\n";
      } else {
        std::cout << " (" << report->checkpoints_verified << " signatures verified)\n";
      }
      if (report->problem.has_value()) {
        std::cout << "FAILED at line " << report->problem->line << " ("
                  << audit::ProblemKindName(report->problem->kind)
                  << "): " << report->problem->message << "\n";
        *rc = 1;
        return;
      }
      if (previous.has_value() && !audit::FollowsFrom(*previous, *report)) {
        std::cout << "FAILED: " << file << " does not continue " << va->files[i - 1]
                  << " (files missing between them, or not in rotation order)\n";
        *rc = 1;
        return;
      }
      previous = *std::move(report);
    }
    std::cout << (va->files.size() > 1 ? "OK: the audit files are intact and follow each other\n"
                                        : "OK: the audit file is intact\n");
  });
}

void AddStatus(CLI::App& app, std::shared_ptr<int> rc) {
  auto common = std::make_shared<Common>();
  CLI::App* status = app.add_subcommand("status", "Show seal status (exit 2 when sealed)");
  AddCommon(status, *common);
  status->callback([common, rc]() {
    auto client = Connect(*common);
    if (!client.ok()) { *rc = Fail(client.status()); return; }
    auto reply = (*client)->Call("GET", "sys/seal-status");
    if (!reply.ok()) { *rc = Fail(reply.status()); return; }
    PrintReply(*common, *reply);
    json::value v = ParseOrNull(reply->body);
    if (v.is_object() && v.as_object().contains("sealed") && v.as_object().at("sealed").as_bool()) {
      *rc = 2;
    }
  });
}

// Vault's generic commands: `ward read|write|list|delete PATH`, for any route (PKI among
// them). Output as Vault's CLI: a Key/Value table of `data` (or -format=json: the whole reply;
// -field=NAME: that field of `data` alone, strings unquoted), warnings on stderr.
void AddGeneric(CLI::App& app, std::shared_ptr<int> rc) {
  struct GenericArgs {
    Common common;
    std::string path;
    std::vector<std::string> pairs;
    std::string field;
    bool force = false;
  };
  struct Spec {
    const char* name;
    const char* help;
    const char* method;
  };
  for (const Spec& spec : {Spec{"read", "Read data at a path (GET)", "GET"},
                           Spec{"write", "Write key=value pairs to a path (PUT)", "PUT"},
                           Spec{"list", "List the keys at a path (LIST)", "LIST"},
                           Spec{"delete", "Delete the data at a path (DELETE)", "DELETE"}}) {
    auto args = std::make_shared<GenericArgs>();
    const std::string method = spec.method;
    CLI::App* cmd = app.add_subcommand(spec.name, spec.help);
    AddCommon(cmd, args->common);
    cmd->add_option("path", args->path, "API path without /v1/, e.g. pki/issue/web")->required();
    if (method == "PUT") {
      cmd->add_option("pairs", args->pairs, "key=value pairs (value @file reads a file, - stdin)");
      cmd->add_flag("-f,--force", args->force, "Write even with no data");
    }
    if (method == "GET" || method == "PUT") {
      cmd->add_option("--field", args->field, "Print only this field of the data");
    }
    cmd->callback([args, method, rc]() {
      std::string path = args->path;
      while (!path.empty() && path.front() == '/') path.erase(0, 1);
      std::string body;
      if (method == "PUT") {
        auto data = KeyValues(args->pairs);
        if (!data.ok()) { *rc = Fail(data.status()); return; }
        if (data->empty() && !args->force) {
          *rc = Fail(absl::InvalidArgumentError("must supply data or use -force"));
          return;
        }
        body = json::serialize(*data);
      }
      auto client = Connect(args->common);
      if (!client.ok()) { *rc = Fail(client.status()); return; }
      auto reply = (*client)->Call(method, path, body);
      if (!reply.ok()) { *rc = Fail(reply.status()); return; }
      json::value v = ParseOrNull(reply->body);
      const json::object* top = v.is_object() ? &v.as_object() : nullptr;
      const json::value* data = top != nullptr ? top->if_contains("data") : nullptr;
      if (top != nullptr && args->common.format != "json") {
        if (const json::value* w = top->if_contains("warnings"); w != nullptr && w->is_array()) {
          for (const json::value& text : w->as_array()) {
            std::cerr << "WARNING: " << ScalarText(text) << "\n";
          }
        }
      }
      if (!args->field.empty()) {
        const json::value* f = data != nullptr && data->is_object()
                                   ? data->as_object().if_contains(args->field)
                                   : nullptr;
        if (f == nullptr) {
          *rc = Fail(absl::NotFoundError(absl::StrCat("field \"", args->field,
                                                      "\" not present in the data")));
          return;
        }
        std::string text = ScalarText(*f);
        std::cout << text;
        if (text.empty() || text.back() != '\n') std::cout << "\n";
        return;
      }
      if (args->common.format == "json") {
        PrintReply(args->common, *reply);
        return;
      }
      if (reply->body.empty()) {
        std::cout << (method == "DELETE" ? "Success! Data deleted (if it existed) at: "
                                         : "Success! Data written to: ")
                  << path << "\n";
        return;
      }
      if (top == nullptr) {  // a raw body (a PEM certificate, say): print it as it is
        std::cout << reply->body;
        if (reply->body.back() != '\n') std::cout << "\n";
        return;
      }
      if (method == "LIST" && data != nullptr && data->is_object() &&
          data->as_object().contains("keys") && data->as_object().at("keys").is_array()) {
        std::cout << "Keys\n----\n";
        for (const json::value& k : data->as_object().at("keys").as_array()) {
          std::cout << ScalarText(k) << "\n";
        }
        return;
      }
      PrintReply(args->common, *reply);
    });
  }
}

}  // namespace

Commands::Commands(CLI::App& app) {
  AddKv(app, exit_code_);
  AddToken(app, exit_code_);
  AddOperator(app, exit_code_);
  AddStatus(app, exit_code_);
  AddGeneric(app, exit_code_);
  AddAudit(app, exit_code_);
}

std::vector<std::string> NormaliseFlags(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (i > 0 && a.size() > 2 && a[0] == '-' && a[1] != '-' && std::isalpha(static_cast<unsigned char>(a[1])) &&
        (a.find('=') == std::string::npos ? a.size() > 2 : a.find('=') > 2)) {
      a = "-" + a;
    }
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace ward::cli
