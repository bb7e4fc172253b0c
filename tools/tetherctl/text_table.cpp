#include "text_table.hpp"

#include <algorithm>

namespace tether::tools::ctl {

std::size_t display_width(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

text_table::text_table(std::vector<std::string> header, std::vector<align> aligns)
  : header_(std::move(header)), aligns_(std::move(aligns)) {
  // nop
}

void text_table::add_row(std::vector<std::string> cells) {
  rows_.push_back(std::move(cells));
}

std::string text_table::render(std::string_view gap) const {
  size_t columns = header_.size();
  for (const auto& row : rows_)
    columns = std::max(columns, row.size());
  std::vector<size_t> widths(columns, 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i)
      widths[i] = std::max(widths[i], display_width(row[i]));
  };
  measure(header_);
  for (const auto& row : rows_)
    measure(row);
  std::string out;
  auto emit = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < columns; ++i) {
      std::string_view cell = i < row.size() ? std::string_view{row[i]} : std::string_view{};
      auto pad = widths[i] - display_width(cell);
      bool right = i < aligns_.size() && aligns_[i] == align::right;
      if (i > 0)
        line += gap;
      if (right)
        line.append(pad, ' ');
      line += cell;
      if (!right)
        line.append(pad, ' ');
    }
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    out += line;
    out += '\n';
  };
  if (!header_.empty())
    emit(header_);
  for (const auto& row : rows_)
    emit(row);
  return out;
}

} // namespace tether::tools::ctl
