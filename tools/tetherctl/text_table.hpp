#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tether::tools::ctl {

/// A plain-text table with columns padded to their widest cell, for terminal output.
/// Widths count UTF-8 code points. Lines carry no trailing blanks.
/// Thread safety: none.
class text_table {
public:
  /// Horizontal alignment of a column.
  enum class align { left, right };

  /// Creates a table with the given header (none when empty) and per-column alignment
  /// (missing entries are `left`). The column count is the largest of the header size and
  /// any row size; short rows are padded with empty cells.
  explicit text_table(std::vector<std::string> header = {}, std::vector<align> aligns = {});

  /// Appends a row.
  void add_row(std::vector<std::string> cells);

  /// Number of rows added, the header excluded.
  std::size_t rows() const noexcept {
    return rows_.size();
  }

  /// Renders the header (if any) and the rows, each line ending in `\n`, with `gap`
  /// between columns.
  std::string render(std::string_view gap = "  ") const;

private:
  std::vector<std::string> header_;
  std::vector<align> aligns_;
  std::vector<std::vector<std::string>> rows_;
};

/// Display width of `text` in UTF-8 code points.
std::size_t display_width(std::string_view text);

} // namespace tether::tools::ctl
