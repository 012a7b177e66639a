#include "metrics/registry.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace ward::metrics {
namespace {

[[noreturn]] void Die(const std::string& what) {
  spdlog::critical("metrics registry: {}", what);
  // Also straight to stderr: the default logger may write elsewhere, and this aborts.
  std::fprintf(stderr, "metrics registry: %s\n", what.c_str());
  std::abort();
}

bool ValidName(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

void AppendEscaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// Appends `{a="x",b="y"}` (plus `extra` as a last label), or nothing if there are no labels.
void AppendLabels(std::string& out, const std::vector<std::string>& names,
                  const std::vector<std::string>& values, std::string_view extra_name = "",
                  std::string_view extra_value = "") {
  if (names.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (size_t i = 0; i < names.size(); ++i) {
    if (!first) out += ',';
    first = false;
    out += names[i];
    out += "=\"";
    AppendEscaped(out, values[i], true);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    AppendEscaped(out, extra_value, true);
    out += '"';
  }
  out += '}';
}

std::string_view TypeName(Type t) {
  switch (t) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

void AddDouble(std::atomic<double>& a, double v) {
  double old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, old + v, std::memory_order_relaxed)) {
  }
}

}  // namespace

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return "NaN";
  return std::string(buf, end);
}

std::vector<double> DefaultLatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  // Bucket i counts observations <= bounds_[i] and > bounds_[i-1]; cumulated at snapshot.
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  AddDouble(sum_, v);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

template <typename T>
Family<T>::Family(std::string name, std::string help, Type type,
                  std::vector<std::string> label_names, std::vector<double> bounds,
                  size_t max_series)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)),
      max_series_(max_series) {}

template <typename T>
std::unique_ptr<T> Family<T>::MakeSeries() const {
  if constexpr (std::is_same_v<T, Histogram>) {
    return std::make_unique<Histogram>(bounds_);
  } else {
    return std::make_unique<T>();
  }
}

template <typename T>
T& Family<T>::WithLabels(const std::vector<std::string>& label_values) {
  std::vector<std::string> key = label_values;
  key.resize(label_names_.size());
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = series_.find(key);
    if (it != series_.end()) return *it->second;
  }
  absl::MutexLock lock(&mu_);
  auto it = series_.find(key);
  if (it != series_.end()) return *it->second;
  if (series_.size() >= max_series_) {
    key.assign(label_names_.size(), std::string(kOverflowLabel));
    it = series_.find(key);
    if (it != series_.end()) return *it->second;
  }
  auto& slot = series_[key];
  slot = MakeSeries();
  return *slot;
}

template <typename T>
void Family<T>::Reset() {
  absl::MutexLock lock(&mu_);
  series_.clear();
}

template <typename T>
FamilySnapshot Family<T>::Snapshot() const {
  FamilySnapshot f{name_, help_, type_, label_names_, bounds_, {}};
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [labels, series] : series_) {
    SeriesSnapshot s;
    s.label_values = labels;
    if constexpr (std::is_same_v<T, Histogram>) {
      s.cumulative = series->CumulativeCounts();
      s.count = s.cumulative.back();  // consistent with the +Inf bucket
      s.sum = series->Sum();
    } else {
      s.value = static_cast<double>(series->Value());
    }
    f.series.push_back(std::move(s));
  }
  return f;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

void Registry::CheckNewName(const std::string& name, const std::string& help,
                            const std::vector<std::string>& label_names) {
  if (!ValidName(name, true)) Die(absl::StrCat("invalid metric name \"", name, "\""));
  if (help.empty()) Die(absl::StrCat("metric ", name, " has no help text"));
  std::set<std::string> seen;
  for (const std::string& l : label_names) {
    if (!ValidName(l, false) || l.rfind("__", 0) == 0 || l == "le" || !seen.insert(l).second) {
      Die(absl::StrCat("invalid label name \"", l, "\" on ", name));
    }
  }
  for (const auto& f : counters_) {
    if (f->name() == name) Die(absl::StrCat("duplicate metric ", name));
  }
  for (const auto& f : gauges_) {
    if (f->name() == name) Die(absl::StrCat("duplicate metric ", name));
  }
  for (const auto& f : histograms_) {
    if (f->name() == name) Die(absl::StrCat("duplicate metric ", name));
  }
}

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> label_names, size_t max_series) {
  absl::MutexLock lock(&mu_);
  CheckNewName(name, help, label_names);
  counters_.emplace_back(new Family<Counter>(std::move(name), std::move(help), Type::kCounter,
                                             std::move(label_names), {}, max_series));
  order_.emplace_back(Type::kCounter, counters_.size() - 1);
  return *counters_.back();
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> label_names, size_t max_series) {
  absl::MutexLock lock(&mu_);
  CheckNewName(name, help, label_names);
  gauges_.emplace_back(new Family<Gauge>(std::move(name), std::move(help), Type::kGauge,
                                         std::move(label_names), {}, max_series));
  order_.emplace_back(Type::kGauge, gauges_.size() - 1);
  return *gauges_.back();
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> bounds, size_t max_series) {
  absl::MutexLock lock(&mu_);
  CheckNewName(name, help, label_names);
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      Die(absl::StrCat("histogram ", name, " bounds must be finite and strictly ascending"));
    }
  }
  histograms_.emplace_back(new Family<Histogram>(std::move(name), std::move(help), Type::kHistogram,
                                                 std::move(label_names), std::move(bounds),
                                                 max_series));
  order_.emplace_back(Type::kHistogram, histograms_.size() - 1);
  return *histograms_.back();
}

std::vector<FamilySnapshot> Registry::Snapshot() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<FamilySnapshot> out;
  out.reserve(order_.size());
  for (auto [type, index] : order_) {
    switch (type) {
      case Type::kCounter:
        out.push_back(counters_[index]->Snapshot());
        break;
      case Type::kGauge:
        out.push_back(gauges_[index]->Snapshot());
        break;
      case Type::kHistogram:
        out.push_back(histograms_[index]->Snapshot());
        break;
    }
  }
  return out;
}

std::string Registry::RenderPrometheus() const {
  std::string out;
  for (const FamilySnapshot& f : Snapshot()) {
    out += "# HELP ";
    out += f.name;
    out += ' ';
    AppendEscaped(out, f.help, false);
    out += "\n# TYPE ";
    out += f.name;
    out += ' ';
    out += TypeName(f.type);
    out += '\n';
    for (const SeriesSnapshot& s : f.series) {
      if (f.type != Type::kHistogram) {
        out += f.name;
        AppendLabels(out, f.label_names, s.label_values);
        out += ' ';
        out += FormatValue(s.value);
        out += '\n';
        continue;
      }
      for (size_t i = 0; i < s.cumulative.size(); ++i) {
        out += f.name;
        out += "_bucket";
        std::string le = i < f.bounds.size() ? FormatValue(f.bounds[i]) : "+Inf";
        AppendLabels(out, f.label_names, s.label_values, "le", le);
        out += ' ';
        out += std::to_string(s.cumulative[i]);
        out += '\n';
      }
      out += f.name;
      out += "_sum";
      AppendLabels(out, f.label_names, s.label_values);
      out += ' ';
      out += FormatValue(s.sum);
      out += '\n';
      out += f.name;
      out += "_count";
      AppendLabels(out, f.label_names, s.label_values);
      out += ' ';
      out += std::to_string(s.count);
      out += '\n';
    }
  }
  return out;
}

}  // namespace ward::metrics
