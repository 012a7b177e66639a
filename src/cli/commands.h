#pragma once

#include <memory>

#include "CLI/CLI.hpp"

namespace ward::cli {

// Client-side commands of the `ward` binary: kv, token, operator, status, audit, and the
// generic read, write, list and delete (docs/cli.md).
// Register adds them to `app`; after app.parse(), ExitCode() is what main returns.
class Commands {
 public:
  explicit Commands(CLI::App& app);
  int ExitCode() const { return *exit_code_; }

 private:
  std::shared_ptr<int> exit_code_ = std::make_shared<int>(0);
};

// Rewrites Vault-style single-dash long flags ("-format=json", "-cas=0") to CLI11's
// double-dash form so both spellings work. Leaves "-h", "--x" and non-flags alone.
std::vector<std::string> NormaliseFlags(int argc, char** argv);

}  // namespace ward::cli
