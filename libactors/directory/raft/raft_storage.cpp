#include "directory/raft/raft_storage.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

namespace tether::directory::raft {

std::string to_string(storage_errc x) {
  switch (x) {
    case storage_errc::none:
      return "none";
    case storage_errc::io_error:
      return "io_error";
    case storage_errc::corrupt:
      return "corrupt";
    case storage_errc::busy:
      return "busy";
    case storage_errc::invalid_argument:
      return "invalid_argument";
    case storage_errc::failed_before:
      return "failed_before";
    case storage_errc::injected:
      return "injected";
  }
  return "unknown";
}

raft_storage::~raft_storage() {
  // nop
}

namespace {

// -- little-endian encoding -----------------------------------------------------

void put_u8(std::string& out, uint8_t x) {
  out.push_back(static_cast<char>(x));
}

void put_u32(std::string& out, uint32_t x) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
}

void put_u64(std::string& out, uint64_t x) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
}

uint32_t get_u32(const char* p) {
  uint32_t x = 0;
  for (int i = 3; i >= 0; --i)
    x = (x << 8) | static_cast<uint8_t>(p[i]);
  return x;
}

uint64_t get_u64(const char* p) {
  uint64_t x = 0;
  for (int i = 7; i >= 0; --i)
    x = (x << 8) | static_cast<uint8_t>(p[i]);
  return x;
}

uint64_t xxh3(const char* p, size_t n) {
  return XXH3_64bits(p, n);
}

// -- file format constants ------------------------------------------------------

constexpr uint32_t format_version = 1;
constexpr size_t hard_state_size = 29;
constexpr size_t log_header_size = 32;
constexpr size_t record_header_size = 16;
constexpr uint8_t record_entry = 1;
constexpr uint8_t record_truncate = 2;
constexpr size_t entry_fixed_size = 1 + 8 + 8 + 1;
constexpr size_t truncate_size = 1 + 8;

const char* hard_state_file = "hard_state";
const char* snapshot_file = "snapshot";
const char* log_file = "log";
const char* lock_file = "LOCK";

// -- encoding -------------------------------------------------------------------

std::string encode_hard_state(const hard_state& x) {
  std::string out = "TRHS";
  put_u32(out, format_version);
  put_u64(out, x.term.value);
  put_u8(out, x.voted_for ? 1 : 0);
  put_u32(out, x.voted_for ? x.voted_for->value : 0);
  put_u64(out, xxh3(out.data(), out.size()));
  return out;
}

std::string encode_snapshot(const snapshot& x) {
  std::string out = "TRSN";
  put_u32(out, format_version);
  put_u64(out, x.last_index.value);
  put_u64(out, x.last_term.value);
  put_u64(out, x.state.size());
  out += x.state;
  put_u64(out, xxh3(out.data(), out.size()));
  return out;
}

std::string encode_log_header(log_index base, term base_term) {
  std::string out = "TRLG";
  put_u32(out, format_version);
  put_u64(out, base.value);
  put_u64(out, base_term.value);
  put_u64(out, xxh3(out.data(), out.size()));
  return out;
}

void frame_record(std::string& out, const std::string& payload) {
  std::string size;
  put_u32(size, static_cast<uint32_t>(payload.size()));
  out += size;
  put_u32(out, static_cast<uint32_t>(xxh3(size.data(), size.size())));
  put_u64(out, xxh3(payload.data(), payload.size()));
  out += payload;
}

void encode_entry_record(std::string& out, const entry& e) {
  std::string payload;
  payload.reserve(entry_fixed_size + e.command.size());
  put_u8(payload, record_entry);
  put_u64(payload, e.term.value);
  put_u64(payload, e.index.value);
  put_u8(payload, e.kind == entry_kind::noop ? 1 : 0);
  payload += e.command;
  frame_record(out, payload);
}

void encode_truncate_record(std::string& out, log_index from) {
  std::string payload;
  put_u8(payload, record_truncate);
  put_u64(payload, from.value);
  frame_record(out, payload);
}

// -- decoding -------------------------------------------------------------------

storage_error corrupt(const std::string& path, std::string what) {
  return {storage_errc::corrupt, "raft storage: " + path + ": " + std::move(what)};
}

storage_error decode_hard_state(const std::string& path, const std::string& in,
                                hard_state& out) {
  if (in.size() != hard_state_size)
    return corrupt(path, "size " + std::to_string(in.size()) + ", expected "
                           + std::to_string(hard_state_size));
  if (in.compare(0, 4, "TRHS") != 0)
    return corrupt(path, "bad magic (not a hard state file)");
  if (get_u32(in.data() + 4) != format_version)
    return corrupt(path, "unknown format version "
                           + std::to_string(get_u32(in.data() + 4)));
  if (xxh3(in.data(), 21) != get_u64(in.data() + 21))
    return corrupt(path, "checksum mismatch");
  out.term = term{get_u64(in.data() + 8)};
  auto has_vote = static_cast<uint8_t>(in[16]);
  if (has_vote > 1)
    return corrupt(path, "bad vote flag");
  if (has_vote == 1)
    out.voted_for = member_id{get_u32(in.data() + 17)};
  else
    out.voted_for.reset();
  return {};
}

storage_error decode_snapshot(const std::string& path, const std::string& in,
                              snapshot& out) {
  constexpr size_t fixed = 4 + 4 + 8 + 8 + 8;
  if (in.size() < fixed + 8)
    return corrupt(path, "truncated (" + std::to_string(in.size()) + " bytes)");
  if (in.compare(0, 4, "TRSN") != 0)
    return corrupt(path, "bad magic (not a snapshot file)");
  if (get_u32(in.data() + 4) != format_version)
    return corrupt(path, "unknown format version "
                           + std::to_string(get_u32(in.data() + 4)));
  auto size = get_u64(in.data() + 24);
  if (size != in.size() - fixed - 8)
    return corrupt(path, "state size " + std::to_string(size) + " does not match "
                           "the file size " + std::to_string(in.size()));
  if (xxh3(in.data(), in.size() - 8) != get_u64(in.data() + in.size() - 8))
    return corrupt(path, "checksum mismatch");
  out.last_index = log_index{get_u64(in.data() + 8)};
  out.last_term = term{get_u64(in.data() + 16)};
  out.state = in.substr(fixed, size);
  if (out.last_index.value == 0)
    return corrupt(path, "snapshot at index 0");
  return {};
}

// The content of a log file after applying its truncate records.
struct log_contents {
  log_index base;
  raft::term base_term;
  std::vector<entry> entries;
  // Offset after the last intact record; less than the file size after a torn tail.
  uint64_t valid_end = 0;
  uint64_t file_size = 0;
};

// Whether an intact record (size check and payload checksum) starts at `pos`.
bool intact_record_at(const std::string& buf, size_t pos, uint32_t* size_out = nullptr) {
  if (buf.size() < record_header_size || pos > buf.size() - record_header_size)
    return false;
  auto p = buf.data() + pos;
  auto size = get_u32(p);
  if (get_u32(p + 4) != static_cast<uint32_t>(xxh3(p, 4)))
    return false;
  if (size > buf.size() - pos - record_header_size)
    return false;
  if (get_u64(p + 8) != xxh3(p + record_header_size, size))
    return false;
  if (size_out != nullptr)
    *size_out = size;
  return true;
}

storage_error decode_log(const std::string& path, const std::string& buf,
                         log_contents& out) {
  out = log_contents{};
  out.file_size = buf.size();
  if (buf.size() < log_header_size)
    return corrupt(path, "header truncated (" + std::to_string(buf.size())
                           + " bytes)");
  if (buf.compare(0, 4, "TRLG") != 0)
    return corrupt(path, "bad magic (not a log file)");
  if (get_u32(buf.data() + 4) != format_version)
    return corrupt(path, "unknown format version "
                           + std::to_string(get_u32(buf.data() + 4)));
  if (xxh3(buf.data(), 24) != get_u64(buf.data() + 24))
    return corrupt(path, "header checksum mismatch");
  out.base = log_index{get_u64(buf.data() + 8)};
  out.base_term = term{get_u64(buf.data() + 16)};
  auto last = out.base;
  auto last_term = out.base_term;
  size_t pos = log_header_size;
  while (pos < buf.size()) {
    uint32_t size = 0;
    if (!intact_record_at(buf, pos, &size)) {
      // Torn tail (a crash mid-append) only if nothing intact follows.
      for (auto q = pos + 1; q + record_header_size <= buf.size(); ++q)
        if (intact_record_at(buf, q))
          return corrupt(path, "damaged record at offset " + std::to_string(pos)
                                 + " followed by an intact record at offset "
                                 + std::to_string(q));
      out.valid_end = pos;
      return {};
    }
    auto at = std::to_string(pos);
    auto payload = buf.data() + pos + record_header_size;
    if (size == 0)
      return corrupt(path, "empty record at offset " + at);
    auto type = static_cast<uint8_t>(payload[0]);
    if (type == record_entry) {
      if (size < entry_fixed_size)
        return corrupt(path, "short entry record at offset " + at);
      entry e;
      e.term = term{get_u64(payload + 1)};
      e.index = log_index{get_u64(payload + 9)};
      auto kind = static_cast<uint8_t>(payload[17]);
      if (kind > 1)
        return corrupt(path, "unknown entry kind " + std::to_string(kind)
                               + " at offset " + at);
      e.kind = kind == 1 ? entry_kind::noop : entry_kind::command;
      e.command.assign(payload + entry_fixed_size, size - entry_fixed_size);
      if (e.index.value != last.value + 1)
        return corrupt(path, "entry " + std::to_string(e.index.value) + " at offset "
                               + at + " does not follow entry "
                               + std::to_string(last.value));
      if (e.term < last_term)
        return corrupt(path, "entry " + std::to_string(e.index.value) + " at offset "
                               + at + " has a lower term than its predecessor");
      last = e.index;
      last_term = e.term;
      out.entries.push_back(std::move(e));
    } else if (type == record_truncate) {
      if (size != truncate_size)
        return corrupt(path, "bad truncate record at offset " + at);
      auto from = get_u64(payload + 1);
      if (from <= out.base.value || from > last.value + 1)
        return corrupt(path, "truncate from " + std::to_string(from) + " at offset "
                               + at + " outside the log ("
                               + std::to_string(out.base.value + 1) + ".."
                               + std::to_string(last.value + 1) + ")");
      out.entries.resize(from - out.base.value - 1);
      last = log_index{from - 1};
      last_term = out.entries.empty() ? out.base_term : out.entries.back().term;
    } else {
      return corrupt(path, "unknown record type " + std::to_string(type)
                             + " at offset " + at);
    }
    pos += record_header_size + size;
  }
  out.valid_end = pos;
  return {};
}

// -- files ----------------------------------------------------------------------

storage_error sys_error(const std::string& what, const std::string& path) {
  return {storage_errc::io_error,
          "raft storage: " + what + " " + path + ": " + std::strerror(errno)};
}

std::string join(const std::string& dir, const char* name) {
  return (std::filesystem::path{dir} / name).string();
}

storage_error write_all(int fd, const std::string& bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return sys_error("cannot write", path);
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

storage_error sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return sys_error("cannot open directory", dir);
  storage_error err;
  if (::fsync(fd) != 0)
    err = sys_error("cannot fsync directory", dir);
  ::close(fd);
  return err;
}

// Replaces `dir/name` by `bytes`: temp file, fsync, rename, fsync of the directory.
storage_error write_atomically(const std::string& dir, const char* name,
                               const std::string& bytes, bool sync) {
  auto path = join(dir, name);
  auto tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return sys_error("cannot create", tmp);
  auto err = write_all(fd, bytes, tmp);
  if (!err && sync && ::fsync(fd) != 0)
    err = sys_error("cannot fsync", tmp);
  if (::close(fd) != 0 && !err)
    err = sys_error("cannot close", tmp);
  if (err)
    return err;
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return sys_error("cannot rename to", path);
  return sync ? sync_dir(dir) : storage_error{};
}

// Reads a whole file; `exists` is false (and no error) when it is missing.
storage_error read_file(const std::string& path, std::string& out, bool& exists) {
  out.clear();
  exists = false;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return {};
    return sys_error("cannot open", path);
  }
  exists = true;
  char buf[65536];
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      auto err = sys_error("cannot read", path);
      ::close(fd);
      return err;
    }
    if (n == 0)
      break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return {};
}

} // namespace

// -- file_storage -----------------------------------------------------------------

file_storage::file_storage(std::string dir, file_storage_options opts)
  : dir_(std::move(dir)), opts_(opts) {
  // nop
}

file_storage::~file_storage() {
  close_files();
}

void file_storage::close_files() {
  if (log_fd_ >= 0)
    ::close(log_fd_);
  log_fd_ = -1;
  if (lock_fd_ >= 0)
    ::close(lock_fd_); // releases the flock
  lock_fd_ = -1;
  loaded_ = false;
}

storage_error file_storage::fail(storage_error err) {
  failed_ = storage_error{storage_errc::failed_before,
                          "raft storage: " + dir_ + ": an earlier write failed ("
                            + err.message() + "); reload first"};
  return err;
}

storage_error file_storage::load(persisted_state& out) {
  close_files();
  failed_ = {};
  dropped_tail_ = 0;
  std::error_code ec;
  bool created = std::filesystem::create_directories(dir_, ec);
  if (ec)
    return {storage_errc::io_error,
            "raft storage: cannot create directory " + dir_ + ": " + ec.message()};
  if (created && opts_.sync) {
    // Make the new directory's own entry durable too.
    auto parent = std::filesystem::absolute(dir_, ec).parent_path();
    if (!ec)
      if (auto err = sync_dir(parent.string()))
        return err;
  }
  // Lock the directory: one member per data directory.
  auto lock_path = join(dir_, lock_file);
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0)
    return sys_error("cannot open", lock_path);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    auto busy = errno == EWOULDBLOCK;
    auto err = busy ? storage_error{storage_errc::busy,
                                    "raft storage: data directory " + dir_
                                      + " is in use (" + lock_path + " is locked)"}
                    : sys_error("cannot lock", lock_path);
    close_files();
    return err;
  }
  // Temp files are writes that never got renamed into place: drop them.
  for (auto& e : std::filesystem::directory_iterator{dir_, ec})
    if (e.path().extension() == ".tmp")
      std::filesystem::remove(e.path(), ec);
  persisted_state st;
  std::string bytes;
  bool has_hard = false;
  auto hard_path = join(dir_, hard_state_file);
  if (auto err = read_file(hard_path, bytes, has_hard))
    return err;
  if (has_hard)
    if (auto err = decode_hard_state(hard_path, bytes, st.hard))
      return err;
  bool has_snap = false;
  auto snap_path = join(dir_, snapshot_file);
  if (auto err = read_file(snap_path, bytes, has_snap))
    return err;
  if (has_snap)
    if (auto err = decode_snapshot(snap_path, bytes, st.snapshot))
      return err;
  bool has_log = false;
  auto log_path = join(dir_, log_file);
  if (auto err = read_file(log_path, bytes, has_log))
    return err;
  log_contents log;
  bool rewrite = false;
  if (has_log) {
    if (auto err = decode_log(log_path, bytes, log))
      return err;
    if (log.valid_end < log.file_size) {
      // Drop the torn tail so that new records follow intact ones.
      dropped_tail_ = log.file_size - log.valid_end;
      if (::truncate(log_path.c_str(), static_cast<off_t>(log.valid_end)) != 0)
        return sys_error("cannot truncate the torn tail of", log_path);
      int fd = ::open(log_path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0)
        return sys_error("cannot open", log_path);
      bool ok = !opts_.sync || ::fsync(fd) == 0;
      auto err = ok ? storage_error{} : sys_error("cannot fsync", log_path);
      ::close(fd);
      if (err)
        return err;
    }
  } else if (has_hard || has_snap) {
    return corrupt(log_path, "missing, but the directory holds a "
                               + std::string{has_hard ? "hard state" : "snapshot"});
  } else {
    rewrite = true; // a new directory
  }
  // Reconcile the log with the snapshot.
  auto s = st.snapshot.last_index;
  if (s.value == 0) {
    if (log.base.value != 0)
      return corrupt(log_path, "compacted to index " + std::to_string(log.base.value)
                                 + " but there is no snapshot");
  } else if (log.base > s) {
    return corrupt(log_path, "starts after index " + std::to_string(log.base.value)
                               + ", past the snapshot at "
                               + std::to_string(s.value));
  } else if (log.base == s) {
    if (log.base_term != st.snapshot.last_term)
      return corrupt(log_path, "base term " + std::to_string(log.base_term.value)
                                 + " differs from the snapshot's term "
                                 + std::to_string(st.snapshot.last_term.value));
  } else {
    // The snapshot was saved but the log not yet rewritten: finish the job.
    auto last = log.entries.empty() ? log.base : log.entries.back().index;
    bool agrees = s <= last
                  && log.entries[s.value - log.base.value - 1].term
                       == st.snapshot.last_term;
    if (agrees)
      log.entries.erase(log.entries.begin(),
                        log.entries.begin()
                          + static_cast<ptrdiff_t>(s.value - log.base.value));
    else
      log.entries.clear();
    log.base = s;
    log.base_term = st.snapshot.last_term;
    rewrite = true;
  }
  if (rewrite) {
    if (auto err = rewrite_log(log.base, log.base_term, log.entries))
      return err;
  } else {
    log_fd_ = ::open(log_path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (log_fd_ < 0)
      return sys_error("cannot open", log_path);
  }
  base_index_ = log.base;
  base_term_ = log.base_term;
  last_index_ = log.entries.empty() ? log.base : log.entries.back().index;
  terms_.clear();
  for (auto& e : log.entries)
    terms_.push_back(e.term);
  st.entries = std::move(log.entries);
  out = std::move(st);
  loaded_ = true;
  return {};
}

storage_error file_storage::rewrite_log(log_index base, raft::term base_term,
                                        const std::vector<entry>& entries) {
  auto bytes = encode_log_header(base, base_term);
  for (auto& e : entries)
    encode_entry_record(bytes, e);
  if (log_fd_ >= 0) {
    ::close(log_fd_);
    log_fd_ = -1;
  }
  if (auto err = write_atomically(dir_, log_file, bytes, opts_.sync))
    return err;
  auto path = join(dir_, log_file);
  log_fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (log_fd_ < 0)
    return sys_error("cannot open", path);
  return {};
}

storage_error file_storage::check_writable() const {
  if (failed_)
    return failed_;
  if (!loaded_)
    return {storage_errc::invalid_argument,
            "raft storage: " + dir_ + ": write before load"};
  return {};
}

raft::term file_storage::term_at(log_index i) const {
  if (i == base_index_)
    return base_term_;
  return terms_[i.value - base_index_.value - 1];
}

storage_error file_storage::save_hard_state(const hard_state& x) {
  if (auto err = check_writable())
    return err;
  if (auto err = write_atomically(dir_, hard_state_file, encode_hard_state(x),
                                  opts_.sync))
    return fail(std::move(err));
  return {};
}

storage_error file_storage::write_log_records(const std::string& records) {
  auto path = join(dir_, log_file);
  if (auto err = write_all(log_fd_, records, path))
    return fail(std::move(err));
  if (opts_.sync && ::fdatasync(log_fd_) != 0)
    return fail(sys_error("cannot fdatasync", path));
  return {};
}

storage_error file_storage::append(const std::vector<entry>& entries) {
  if (auto err = check_writable())
    return err;
  if (entries.empty())
    return {storage_errc::invalid_argument, "raft storage: empty append"};
  auto first = entries.front().index;
  if (first <= base_index_ || first.value > last_index_.value + 1)
    return {storage_errc::invalid_argument,
            "raft storage: append at " + std::to_string(first.value)
              + " outside the log (" + std::to_string(base_index_.value + 1) + ".."
              + std::to_string(last_index_.value + 1) + ")"};
  auto prev_term = term_at(log_index{first.value - 1});
  for (size_t i = 0; i < entries.size(); ++i) {
    auto& e = entries[i];
    if (e.index.value != first.value + i || e.term < prev_term)
      return {storage_errc::invalid_argument,
              "raft storage: appended entries do not follow each other at "
                + std::to_string(e.index.value)};
    prev_term = e.term;
  }
  std::string records;
  if (first <= last_index_)
    encode_truncate_record(records, first);
  for (auto& e : entries)
    encode_entry_record(records, e);
  if (auto err = write_log_records(records))
    return err;
  terms_.resize(first.value - base_index_.value - 1);
  for (auto& e : entries)
    terms_.push_back(e.term);
  last_index_ = entries.back().index;
  return {};
}

storage_error file_storage::truncate(log_index from) {
  if (auto err = check_writable())
    return err;
  if (from <= base_index_ || from.value > last_index_.value + 1)
    return {storage_errc::invalid_argument,
            "raft storage: truncate at " + std::to_string(from.value)
              + " outside the log (" + std::to_string(base_index_.value + 1) + ".."
              + std::to_string(last_index_.value + 1) + ")"};
  if (from.value == last_index_.value + 1)
    return {}; // nothing stored there
  std::string records;
  encode_truncate_record(records, from);
  if (auto err = write_log_records(records))
    return err;
  terms_.resize(from.value - base_index_.value - 1);
  last_index_ = log_index{from.value - 1};
  return {};
}

storage_error file_storage::save_snapshot(const snapshot& snap) {
  if (auto err = check_writable())
    return err;
  if (snap.last_index <= base_index_)
    return {storage_errc::invalid_argument,
            "raft storage: snapshot at " + std::to_string(snap.last_index.value)
              + " is not past the current one at "
              + std::to_string(base_index_.value)};
  // 1. The snapshot, atomically. A crash after this step leaves a log whose base
  //    is older than the snapshot; `load` finishes the compaction.
  if (auto err = write_atomically(dir_, snapshot_file, encode_snapshot(snap),
                                  opts_.sync))
    return fail(std::move(err));
  // 2. The log, rewritten from its current content past the snapshot.
  bool agrees = snap.last_index <= last_index_
                && term_at(snap.last_index) == snap.last_term;
  std::vector<entry> kept;
  if (agrees && snap.last_index < last_index_) {
    auto path = join(dir_, log_file);
    std::string bytes;
    bool exists = false;
    if (auto err = read_file(path, bytes, exists))
      return fail(std::move(err));
    log_contents log;
    if (auto err = decode_log(path, bytes, log))
      return fail(std::move(err));
    auto log_last = log.entries.empty() ? log.base : log.entries.back().index;
    if (!exists || log.valid_end != log.file_size || log.base != base_index_
        || log_last != last_index_)
      return fail(corrupt(path, "changed under the storage"));
    kept.assign(log.entries.begin()
                  + static_cast<ptrdiff_t>(snap.last_index.value - base_index_.value),
                log.entries.end());
  }
  if (auto err = rewrite_log(snap.last_index, snap.last_term, kept))
    return fail(std::move(err));
  base_index_ = snap.last_index;
  base_term_ = snap.last_term;
  last_index_ = kept.empty() ? base_index_ : kept.back().index;
  terms_.clear();
  for (auto& e : kept)
    terms_.push_back(e.term);
  return {};
}

// -- memory_storage ---------------------------------------------------------------

namespace {

log_index last_of(const persisted_state& st) {
  return st.entries.empty() ? st.snapshot.last_index : st.entries.back().index;
}

} // namespace

bool memory_storage::injected_failure(storage_error& err) {
  if (fail_writes_ == 0)
    return false;
  --fail_writes_;
  err = storage_error{storage_errc::injected, "raft storage: injected write failure"};
  return true;
}

storage_error memory_storage::load(persisted_state& out) {
  if (fail_load_) {
    fail_load_ = false;
    return {storage_errc::corrupt, "raft storage: injected load failure"};
  }
  out = state_;
  return {};
}

storage_error memory_storage::save_hard_state(const hard_state& x) {
  storage_error err;
  if (injected_failure(err))
    return err;
  state_.hard = x;
  ++writes_;
  ++hard_state_writes_;
  return {};
}

storage_error memory_storage::append(const std::vector<entry>& entries) {
  if (entries.empty())
    return {storage_errc::invalid_argument, "raft storage: empty append"};
  auto first = entries.front().index;
  auto base = state_.snapshot.last_index;
  if (first <= base || first.value > last_of(state_).value + 1)
    return {storage_errc::invalid_argument,
            "raft storage: append at " + std::to_string(first.value)
              + " outside the log"};
  for (size_t i = 0; i < entries.size(); ++i)
    if (entries[i].index.value != first.value + i)
      return {storage_errc::invalid_argument,
              "raft storage: appended entries do not follow each other"};
  storage_error err;
  if (injected_failure(err))
    return err;
  state_.entries.resize(first.value - base.value - 1);
  if (tear_keep_) {
    auto keep = std::min(*tear_keep_, entries.size());
    tear_keep_.reset();
    state_.entries.insert(state_.entries.end(), entries.begin(),
                          entries.begin() + static_cast<ptrdiff_t>(keep));
    return {storage_errc::injected, "raft storage: injected torn append"};
  }
  state_.entries.insert(state_.entries.end(), entries.begin(), entries.end());
  ++writes_;
  return {};
}

storage_error memory_storage::truncate(log_index from) {
  auto base = state_.snapshot.last_index;
  if (from <= base || from.value > last_of(state_).value + 1)
    return {storage_errc::invalid_argument,
            "raft storage: truncate at " + std::to_string(from.value)
              + " outside the log"};
  storage_error err;
  if (injected_failure(err))
    return err;
  state_.entries.resize(from.value - base.value - 1);
  ++writes_;
  return {};
}

storage_error memory_storage::save_snapshot(const snapshot& snap) {
  auto base = state_.snapshot.last_index;
  if (snap.last_index <= base)
    return {storage_errc::invalid_argument,
            "raft storage: snapshot is not past the current one"};
  storage_error err;
  if (injected_failure(err))
    return err;
  auto last = last_of(state_);
  bool agrees = snap.last_index <= last
                && state_.entries[snap.last_index.value - base.value - 1].term
                     == snap.last_term;
  if (agrees)
    state_.entries.erase(state_.entries.begin(),
                         state_.entries.begin()
                           + static_cast<ptrdiff_t>(snap.last_index.value
                                                    - base.value));
  else
    state_.entries.clear();
  state_.snapshot = snap;
  ++writes_;
  return {};
}

} // namespace tether::directory::raft
