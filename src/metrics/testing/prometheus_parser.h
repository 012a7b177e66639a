#pragma once

// A strict little parser of the Prometheus text format 0.0.4, for tests: checks what Ward
// promises about its exposition and gives the samples back for value assertions.
// Header-only; test code only.

#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ward::metrics::testing {

struct Sample {
  std::string name;                           // as written, e.g. "ward_x_bucket"
  std::map<std::string, std::string> labels;  // unescaped
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> help;  // family -> help
  std::map<std::string, std::string> type;  // family -> counter|gauge|histogram
  std::vector<Sample> samples;

  // The value of the sample `name` whose labels include all of `labels`, or nullopt.
  std::optional<double> Value(const std::string& name,
                              const std::map<std::string, std::string>& labels = {}) const {
    for (const Sample& s : samples) {
      if (s.name != name) continue;
      bool match = true;
      for (const auto& [k, v] : labels) {
        auto it = s.labels.find(k);
        if (it == s.labels.end() || it->second != v) match = false;
      }
      if (match) return s.value;
    }
    return std::nullopt;
  }
};

namespace parser_internal {

inline bool WardName(std::string_view n) {
  if (n.substr(0, 5) != "ward_" || n.size() == 5) return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

inline absl::Status Bad(const std::string& line, std::string_view why) {
  return absl::InvalidArgumentError(std::string(why) + ": " + line);
}

inline std::optional<double> ParseNumber(const std::string& s) {
  if (s == "+Inf") return INFINITY;
  if (s == "-Inf") return -INFINITY;
  if (s == "NaN") return NAN;
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

}  // namespace parser_internal

// Parses `text` and checks: every line ends with '\n'; every sample's family (its name minus
// _bucket/_sum/_count for histograms) has a HELP and a TYPE line before it; names match
// ^ward_[a-z0-9_]+$; histogram buckets are cumulative, end with le="+Inf", and +Inf equals
// _count. Errors: kInvalidArgument naming the offending line.
inline absl::StatusOr<Exposition> ParsePrometheusText(std::string_view text) {
  using namespace parser_internal;
  Exposition e;
  if (!text.empty() && text.back() != '\n') return absl::InvalidArgumentError("no final newline");
  // Per histogram series (family + labels without le): buckets seen in order.
  struct HistState {
    double last_le = -INFINITY;
    double last_count = 0;
    bool saw_inf = false;
    double inf_count = 0;
  };
  std::map<std::string, HistState> hist;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line(text.substr(pos, nl - pos));
    pos = nl + 1;
    if (line.empty()) continue;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      std::string rest = line.substr(7);
      size_t sp = rest.find(' ');
      if (sp == std::string::npos) return Bad(line, "malformed comment");
      std::string name = rest.substr(0, sp);
      if (!WardName(name)) return Bad(line, "bad metric name");
      if (line[2] == 'H') {
        if (e.help.count(name)) return Bad(line, "duplicate HELP");
        e.help[name] = rest.substr(sp + 1);
      } else {
        std::string t = rest.substr(sp + 1);
        if (t != "counter" && t != "gauge" && t != "histogram") return Bad(line, "bad TYPE");
        if (!e.help.count(name)) return Bad(line, "TYPE before HELP");
        if (e.type.count(name)) return Bad(line, "duplicate TYPE");
        e.type[name] = t;
      }
      continue;
    }
    if (line[0] == '#') continue;
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    std::string series_key;  // labels other than le, for histogram tracking
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (true) {
        if (i >= line.size()) return Bad(line, "unterminated labels");
        if (line[i] == '}') {
          ++i;
          break;
        }
        size_t eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          return Bad(line, "malformed label");
        }
        std::string key = line.substr(i, eq - i);
        std::string value;
        i = eq + 2;
        while (true) {
          if (i >= line.size()) return Bad(line, "unterminated label value");
          char c = line[i++];
          if (c == '"') break;
          if (c == '\\') {
            if (i >= line.size()) return Bad(line, "bad escape");
            char n = line[i++];
            if (n == 'n') {
              value += '\n';
            } else if (n == '\\' || n == '"') {
              value += n;
            } else {
              return Bad(line, "bad escape");
            }
          } else {
            value += c;
          }
        }
        if (key != "le") series_key += key + "=" + value + ",";
        if (!s.labels.emplace(key, value).second) return Bad(line, "duplicate label");
        if (i < line.size() && line[i] == ',') ++i;
      }
    }
    if (i >= line.size() || line[i] != ' ') return Bad(line, "no value");
    auto value = ParseNumber(line.substr(i + 1));
    if (!value) return Bad(line, "bad value");
    s.value = *value;
    if (!WardName(s.name)) return Bad(line, "bad metric name");
    std::string family = s.name;
    std::string suffix;
    for (std::string_view sfx : {"_bucket", "_sum", "_count"}) {
      if (family.size() > sfx.size() &&
          family.compare(family.size() - sfx.size(), sfx.size(), sfx) == 0) {
        std::string base = family.substr(0, family.size() - sfx.size());
        auto t = e.type.find(base);
        if (t != e.type.end() && t->second == "histogram") {
          family = base;
          suffix = std::string(sfx);
        }
      }
    }
    if (!e.help.count(family) || !e.type.count(family)) {
      return Bad(line, "sample without preceding HELP and TYPE");
    }
    if (e.type[family] == "histogram") {
      std::string key = family + "|" + series_key;
      HistState& h = hist[key];
      if (suffix == "_bucket") {
        auto le_it = s.labels.find("le");
        if (le_it == s.labels.end()) return Bad(line, "bucket without le");
        auto le = ParseNumber(le_it->second);
        if (!le || *le <= h.last_le) return Bad(line, "le not ascending");
        if (s.value < h.last_count) return Bad(line, "buckets not cumulative");
        if (h.saw_inf) return Bad(line, "bucket after +Inf");
        h.last_le = *le;
        h.last_count = s.value;
        if (std::isinf(*le)) {
          h.saw_inf = true;
          h.inf_count = s.value;
        }
      } else if (suffix == "_count") {
        if (!h.saw_inf) return Bad(line, "histogram without +Inf bucket");
        if (s.value != h.inf_count) return Bad(line, "+Inf bucket differs from _count");
      } else if (suffix.empty()) {
        return Bad(line, "bare histogram sample");
      }
    } else if (!suffix.empty() || s.name != family) {
      return Bad(line, "suffix on non-histogram");
    }
    e.samples.push_back(std::move(s));
  }
  for (const auto& [key, h] : hist) {
    if (!h.saw_inf) return absl::InvalidArgumentError("histogram without +Inf: " + key);
  }
  for (const auto& [name, help] : e.help) {
    if (!e.type.count(name)) return absl::InvalidArgumentError("HELP without TYPE: " + name);
  }
  return e;
}

}  // namespace ward::metrics::testing
