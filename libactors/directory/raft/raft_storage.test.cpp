#include "directory/raft/raft_storage.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <xxhash.h>

using namespace tether::directory::raft;

namespace tether::directory::raft::internal {

// Lets Catch print strong values in failed expansions.
template <class Tag, class T>
std::ostream& operator<<(std::ostream& out, strong_value<Tag, T> x) {
  return out << x.value;
}

} // namespace tether::directory::raft::internal

namespace {

// A directory under /tmp, removed with everything in it at scope exit.
struct temp_dir {
  temp_dir() {
    std::string tmpl = "/tmp/tether-raft-storage-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
      FAIL("mkdtemp failed");
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const char* name) const {
    return path + "/" + name;
  }
  std::string path;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

entry make_entry(uint64_t t, uint64_t i, std::string cmd) {
  return entry{term{t}, log_index{i}, entry_kind::command, std::move(cmd)};
}

std::vector<entry> entries(uint64_t t, uint64_t first, uint64_t last) {
  std::vector<entry> out;
  for (auto i = first; i <= last; ++i)
    out.push_back(make_entry(t, i, "cmd " + std::to_string(i) + " of term "
                                     + std::to_string(t)));
  return out;
}

// Loads `dir` with a fresh storage object, as a restarted process would.
persisted_state reload(const std::string& dir) {
  file_storage fs{dir};
  persisted_state st;
  auto err = fs.load(st);
  INFO(err.message());
  REQUIRE_FALSE(err);
  return st;
}

uint64_t le64(const std::string& b, size_t at) {
  uint64_t x = 0;
  for (int i = 7; i >= 0; --i)
    x = (x << 8) | static_cast<uint8_t>(b[at + i]);
  return x;
}

uint32_t le32(const std::string& b, size_t at) {
  uint32_t x = 0;
  for (int i = 3; i >= 0; --i)
    x = (x << 8) | static_cast<uint8_t>(b[at + i]);
  return x;
}

// Offsets of the records of a log file, read as the header documents the format.
std::vector<size_t> record_offsets(const std::string& log) {
  std::vector<size_t> out;
  size_t pos = 32;
  while (pos + 16 <= log.size()) {
    out.push_back(pos);
    pos += 16 + le32(log, pos);
  }
  return out;
}

} // namespace

TEST_CASE("file storage starts empty and round-trips every kind of write",
          "[raft][storage]") {
  temp_dir tmp;
  {
    file_storage fs{tmp.path + "/member"};
    persisted_state st;
    REQUIRE_FALSE(fs.load(st));
    CHECK(st.hard == hard_state{});
    CHECK(st.snapshot.last_index == log_index{0});
    CHECK(st.entries.empty());
    REQUIRE_FALSE(fs.save_hard_state(hard_state{term{3}, member_id{2}}));
    REQUIRE_FALSE(fs.append(entries(1, 1, 5)));
    // Replacing a suffix: entries 4.. of term 3.
    REQUIRE_FALSE(fs.append(entries(3, 4, 6)));
    REQUIRE_FALSE(fs.truncate(log_index{6}));
    auto noop = entry{term{3}, log_index{6}, entry_kind::noop, ""};
    REQUIRE_FALSE(fs.append({noop}));
    // Contract violations change nothing.
    CHECK(fs.append(entries(3, 9, 9)).code() == storage_errc::invalid_argument);
    CHECK(fs.append(entries(2, 7, 7)).code() == storage_errc::invalid_argument);
    CHECK(fs.truncate(log_index{0}).code() == storage_errc::invalid_argument);
  }
  auto st = reload(tmp.path + "/member");
  CHECK(st.hard == (hard_state{term{3}, member_id{2}}));
  auto expected = entries(1, 1, 3);
  for (auto& e : entries(3, 4, 5))
    expected.push_back(e);
  expected.push_back(entry{term{3}, log_index{6}, entry_kind::noop, ""});
  CHECK(st.entries == expected);
  {
    file_storage fs{tmp.path + "/member"};
    REQUIRE_FALSE(fs.load(st));
    // Compaction keeps the entries after the snapshot.
    REQUIRE_FALSE(fs.save_snapshot(snapshot{log_index{4}, term{3}, "state@4"}));
    REQUIRE_FALSE(fs.append(entries(3, 7, 7)));
    CHECK(fs.save_snapshot(snapshot{log_index{4}, term{3}, "again"}).code()
          == storage_errc::invalid_argument);
  }
  st = reload(tmp.path + "/member");
  CHECK(st.snapshot.last_index == log_index{4});
  CHECK(st.snapshot.last_term == term{3});
  CHECK(st.snapshot.state == "state@4");
  REQUIRE(st.entries.size() == 3);
  CHECK(st.entries.front().index == log_index{5});
  CHECK(st.entries.back() == make_entry(3, 7, "cmd 7 of term 3"));
  {
    file_storage fs{tmp.path + "/member"};
    REQUIRE_FALSE(fs.load(st));
    // A leader's snapshot that disagrees with the log replaces all of it.
    REQUIRE_FALSE(fs.save_snapshot(snapshot{log_index{6}, term{4}, "leader's"}));
  }
  st = reload(tmp.path + "/member");
  CHECK(st.snapshot.last_index == log_index{6});
  CHECK(st.snapshot.state == "leader's");
  CHECK(st.entries.empty());
}

TEST_CASE("file storage writes the documented format", "[raft][storage]") {
  temp_dir tmp;
  {
    file_storage fs{tmp.path};
    persisted_state st;
    REQUIRE_FALSE(fs.load(st));
    REQUIRE_FALSE(fs.save_hard_state(hard_state{term{7}, member_id{3}}));
    REQUIRE_FALSE(fs.append({make_entry(7, 1, "hello")}));
    REQUIRE_FALSE(fs.append({make_entry(7, 1, "again")}));
  }
  // hard_state: "TRHS", version, term, has_vote, voted_for, xxh3.
  auto hs = read_bytes(tmp.file("hard_state"));
  REQUIRE(hs.size() == 29);
  CHECK(hs.substr(0, 4) == "TRHS");
  CHECK(le32(hs, 4) == 1);
  CHECK(le64(hs, 8) == 7);
  CHECK(hs[16] == 1);
  CHECK(le32(hs, 17) == 3);
  CHECK(le64(hs, 21) == XXH3_64bits(hs.data(), 21));
  // log: header, then entry 1, truncate from 1, entry 1 again.
  auto log = read_bytes(tmp.file("log"));
  CHECK(log.substr(0, 4) == "TRLG");
  CHECK(le64(log, 8) == 0);
  CHECK(le64(log, 24) == XXH3_64bits(log.data(), 24));
  auto offsets = record_offsets(log);
  REQUIRE(offsets.size() == 3);
  std::vector<int> types;
  for (auto at : offsets) {
    auto size = le32(log, at);
    CHECK(le32(log, at + 4) == static_cast<uint32_t>(XXH3_64bits(log.data() + at, 4)));
    CHECK(le64(log, at + 8) == XXH3_64bits(log.data() + at + 16, size));
    types.push_back(log[at + 16]);
  }
  CHECK(types == std::vector<int>{1, 2, 1});
  auto last = offsets.back() + 16;
  CHECK(le64(log, last + 1) == 7);  // term
  CHECK(le64(log, last + 9) == 1);  // index
  CHECK(log[last + 17] == 0);       // command
  CHECK(log.substr(last + 18) == "again");
  CHECK(le64(log, offsets[1] + 17) == 1); // truncate from 1
}

TEST_CASE("file storage drops a torn tail record and appends after it",
          "[raft][storage]") {
  temp_dir tmp;
  std::string full_log;
  size_t last_record = 0;
  {
    file_storage fs{tmp.path};
    persisted_state st;
    REQUIRE_FALSE(fs.load(st));
    REQUIRE_FALSE(fs.append(entries(1, 1, 3)));
    last_record = read_bytes(tmp.file("log")).size();
    REQUIRE_FALSE(fs.append(entries(1, 4, 4)));
    full_log = read_bytes(tmp.file("log"));
  }
  // A crash mid-append leaves any prefix of the last record.
  for (auto cut = last_record + 1; cut < full_log.size(); ++cut) {
    write_bytes(tmp.file("log"), full_log.substr(0, cut));
    file_storage fs{tmp.path};
    persisted_state st;
    auto err = fs.load(st);
    INFO("cut at " << cut << ": " << err.message());
    REQUIRE_FALSE(err);
    CHECK(st.entries == entries(1, 1, 3));
    CHECK(fs.dropped_tail_bytes() == cut - last_record);
  }
  // ... or garbage the file system never got to overwrite.
  for (auto tail : {std::string(40, '\0'), std::string("\x11\x22\x33\x44\x55\x66", 6)}) {
    write_bytes(tmp.file("log"), full_log + tail);
    file_storage fs{tmp.path};
    persisted_state st;
    REQUIRE_FALSE(fs.load(st));
    CHECK(st.entries == entries(1, 1, 4));
    CHECK(fs.dropped_tail_bytes() == tail.size());
  }
  // A damaged checksum of the very last record counts as torn too.
  auto damaged = full_log;
  damaged.back() ^= 0x01;
  write_bytes(tmp.file("log"), damaged);
  {
    file_storage fs{tmp.path};
    persisted_state st;
    REQUIRE_FALSE(fs.load(st));
    CHECK(st.entries == entries(1, 1, 3));
    // The tail is gone from the file: new records follow intact ones.
    CHECK(read_bytes(tmp.file("log")).size() == last_record);
    REQUIRE_FALSE(fs.append(entries(2, 4, 5)));
  }
  auto st = reload(tmp.path);
  auto expected = entries(1, 1, 3);
  for (auto& e : entries(2, 4, 5))
    expected.push_back(e);
  CHECK(st.entries == expected);
}

TEST_CASE("file storage rejects damage in the middle of the log", "[raft][storage]") {
  temp_dir tmp;
  {
    file_storage fs{tmp.path};
    persisted_state st;
    REQUIRE_FALSE(fs.load(st));
    for (uint64_t i = 1; i <= 4; ++i)
      REQUIRE_FALSE(fs.append(entries(1, i, i)));
  }
  auto log = read_bytes(tmp.file("log"));
  auto offsets = record_offsets(log);
  REQUIRE(offsets.size() == 4);
  SECTION("a flipped bit in a payload") {
    log[offsets[1] + 20] ^= 0x04;
  }
  SECTION("a damaged size field") {
    log[offsets[1]] ^= 0x40;
  }
  SECTION("a damaged log header") {
    log[10] ^= 0x01;
  }
  write_bytes(tmp.file("log"), log);
  file_storage fs{tmp.path};
  persisted_state st;
  auto err = fs.load(st);
  CHECK(err.code() == storage_errc::corrupt);
  CHECK(err.message().find(tmp.file("log")) != std::string::npos);
  CHECK(fs.append(entries(1, 5, 5)).code() == storage_errc::invalid_argument);
}

TEST_CASE("file storage replaces the hard state atomically", "[raft][storage]") {
  temp_dir tmp;
  {
    file_storage fs{tmp.path};
    persisted_state st;
    REQUIRE_FALSE(fs.load(st));
    REQUIRE_FALSE(fs.save_hard_state(hard_state{term{4}, member_id{1}}));
  }
  auto good = read_bytes(tmp.file("hard_state"));
  // A crash while the next hard state was being written leaves a temp file that
  // was never renamed into place: the old state stands.
  write_bytes(tmp.file("hard_state.tmp"), good.substr(0, 11));
  auto st = reload(tmp.path);
  CHECK(st.hard == (hard_state{term{4}, member_id{1}}));
  CHECK_FALSE(std::filesystem::exists(tmp.file("hard_state.tmp")));
  {
    file_storage fs{tmp.path};
    REQUIRE_FALSE(fs.load(st));
    REQUIRE_FALSE(fs.save_hard_state(hard_state{term{5}, std::nullopt}));
  }
  st = reload(tmp.path);
  CHECK(st.hard == (hard_state{term{5}, std::nullopt}));
  // A hard state file that does not match its checksum is an error, not a reset
  // to term 0 (which would allow a second vote).
  auto bad = read_bytes(tmp.file("hard_state"));
  bad[9] ^= 0x01;
  write_bytes(tmp.file("hard_state"), bad);
  file_storage fs{tmp.path};
  auto err = fs.load(st);
  CHECK(err.code() == storage_errc::corrupt);
  CHECK(err.message().find("hard_state") != std::string::npos);
  CHECK(err.message().find("checksum") != std::string::npos);
}

TEST_CASE("file storage finishes a compaction cut short by a crash",
          "[raft][storage]") {
  temp_dir tmp;
  std::string old_log;
  {
    file_storage fs{tmp.path};
    persisted_state st;
    REQUIRE_FALSE(fs.load(st));
    REQUIRE_FALSE(fs.save_hard_state(hard_state{term{2}, std::nullopt}));
    REQUIRE_FALSE(fs.append(entries(2, 1, 6)));
    old_log = read_bytes(tmp.file("log"));
    REQUIRE_FALSE(fs.save_snapshot(snapshot{log_index{4}, term{2}, "s4"}));
  }
  // The snapshot was renamed into place but the log not yet rewritten.
  write_bytes(tmp.file("log"), old_log);
  auto st = reload(tmp.path);
  CHECK(st.snapshot.last_index == log_index{4});
  CHECK(st.entries == entries(2, 5, 6));
  auto log = read_bytes(tmp.file("log"));
  CHECK(le64(log, 8) == 4); // the log is based on the snapshot now
  CHECK(reload(tmp.path).entries == entries(2, 5, 6));
  // A missing log next to a hard state is damage, not a fresh start.
  std::filesystem::remove(tmp.file("log"));
  file_storage fs{tmp.path};
  CHECK(fs.load(st).code() == storage_errc::corrupt);
}

TEST_CASE("a data directory serves one storage at a time", "[raft][storage]") {
  temp_dir tmp;
  file_storage first{tmp.path};
  persisted_state st;
  REQUIRE_FALSE(first.load(st));
  file_storage second{tmp.path};
  auto err = second.load(st);
  CHECK(err.code() == storage_errc::busy);
  CHECK(err.message().find("in use") != std::string::npos);
  CHECK(second.save_hard_state(hard_state{term{1}, std::nullopt}).code()
        == storage_errc::invalid_argument);
}

TEST_CASE("memory storage injects failed and torn writes", "[raft][storage]") {
  memory_storage ms;
  persisted_state st;
  REQUIRE_FALSE(ms.load(st));
  REQUIRE_FALSE(ms.append(entries(1, 1, 2)));
  ms.fail_next_writes(2);
  CHECK(ms.save_hard_state(hard_state{term{1}, member_id{1}}).code()
        == storage_errc::injected);
  CHECK(ms.append(entries(1, 3, 3)).code() == storage_errc::injected);
  CHECK(ms.state().hard == hard_state{});
  CHECK(ms.state().entries.size() == 2);
  ms.tear_next_append(1);
  CHECK(ms.append(entries(2, 2, 4)).code() == storage_errc::injected);
  REQUIRE(ms.state().entries.size() == 2);
  CHECK(ms.state().entries[1] == make_entry(2, 2, "cmd 2 of term 2"));
  REQUIRE_FALSE(ms.save_snapshot(snapshot{log_index{2}, term{2}, "s"}));
  CHECK(ms.state().entries.empty());
  ms.fail_next_load();
  CHECK(ms.load(st).code() == storage_errc::corrupt);
  REQUIRE_FALSE(ms.load(st));
  CHECK(st.snapshot.state == "s");
  CHECK(ms.writes() == 2);
}
