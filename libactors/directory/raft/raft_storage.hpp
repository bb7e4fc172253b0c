#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "directory/raft/types.hpp"

/// Durable state of a Raft member: the storage interface `raft_node` writes through,
/// a file-based implementation and an in-memory one with fault injection for tests.
///
/// What is persisted (Raft's "persistent state on all servers"):
/// - the hard state: current term and the vote cast in it;
/// - the log entries after the latest snapshot;
/// - the latest snapshot: last index, last term, state machine bytes.
/// The commit index, the applied index, the role and replication progress are
/// volatile: a restarted member learns the commit index from the leader (a
/// single-member group commits its own log again when it elects itself).
///
/// Every write is durable when it returns without error (the file storage fsyncs;
/// see `file_storage_options::sync`). A write that fails may or may not have reached
/// the medium in part; the caller must stop acting on its in-memory state and
/// reload (`raft_node` halts). The file format is documented in `file_storage`.
namespace tether::directory::raft {

/// Raft's currentTerm and votedFor, written together and atomically.
struct hard_state {
  raft::term term;
  /// The member this one voted for in `term`, if any.
  std::optional<member_id> voted_for;

  friend bool operator==(const hard_state& a, const hard_state& b) {
    return a.term == b.term && a.voted_for == b.voted_for;
  }
  friend bool operator!=(const hard_state& a, const hard_state& b) {
    return !(a == b);
  }
};

/// Everything a member persists, as `raft_storage::load` returns it.
struct persisted_state {
  raft::hard_state hard;
  /// `last_index` 0: no snapshot.
  raft::snapshot snapshot;
  /// Contiguous entries `snapshot.last_index + 1, ...`.
  std::vector<entry> entries;
};

/// Why a storage operation failed.
enum class storage_errc : uint8_t {
  none = 0,
  /// The operating system refused a read, write, fsync or rename.
  io_error,
  /// Stored data fails its checksum or contradicts itself (not a torn tail).
  corrupt,
  /// Another process or member holds the data directory.
  busy,
  /// The call breaks the interface's contract (e.g. a gap in the log).
  invalid_argument,
  /// An earlier write failed; nothing is written until the next `load`.
  failed_before,
  /// A test asked for this failure (`memory_storage`).
  injected,
};

/// Text form of a `storage_errc`, e.g. "corrupt".
std::string to_string(storage_errc x);

/// The result of a storage operation, in the style of `caf::error`: converts to
/// `true` when something went wrong.
class storage_error {
public:
  storage_error() = default;

  storage_error(storage_errc code, std::string message)
    : code_(code), message_(std::move(message)) {
    // nop
  }

  explicit operator bool() const noexcept {
    return code_ != storage_errc::none;
  }

  storage_errc code() const noexcept {
    return code_;
  }

  /// Says what failed and where (file, offset, system error).
  const std::string& message() const noexcept {
    return message_;
  }

private:
  storage_errc code_ = storage_errc::none;
  std::string message_;
};

/// Where a Raft member keeps its persistent state.
///
/// Contract: `load` first (again after any failed write: a restart); every write is
/// durable when it returns no error. Implementations are not thread-safe: one owner
/// (the member) calls them.
class raft_storage {
public:
  virtual ~raft_storage();

  /// Reads the persisted state into `out` (empty on first use). Calling it again
  /// rereads the medium, as after a restart.
  virtual storage_error load(persisted_state& out) = 0;

  /// Replaces the hard state.
  virtual storage_error save_hard_state(const hard_state& x) = 0;

  /// Appends `entries` (non-empty, contiguous). If the first index is not past the
  /// last stored entry, the stored entries from that index on are replaced. The
  /// first index must lie in `[snapshot.last_index + 1, last stored index + 1]`.
  virtual storage_error append(const std::vector<entry>& entries) = 0;

  /// Drops the stored entries at index `from` and later (`from` past the snapshot).
  virtual storage_error truncate(log_index from) = 0;

  /// Replaces the snapshot by `snap`, then keeps only the stored entries after
  /// `snap.last_index` if the stored log holds `snap.last_index` with
  /// `snap.last_term`; otherwise drops every stored entry. `snap.last_index` must be
  /// past the stored snapshot. This is what `raft_node` does with its own log both when it
  /// compacts and when it installs a leader's snapshot.
  virtual storage_error save_snapshot(const snapshot& snap) = 0;
};

/// Options of a `file_storage`.
struct file_storage_options {
  /// fsync (fdatasync for appends) every file write and the directory after every
  /// rename, so that an acknowledged write survives power loss. Default true. With
  /// false, writes still survive a crash of the process (the kernel keeps them) but
  /// not of the machine: for tests and benchmarks only.
  bool sync = true;
};

/// Persists a member's state in one directory, created if missing.
///
/// Files (all integers little-endian; `xxh3(b)` is XXH3_64bits over bytes `b`):
///
/// - `LOCK`: empty; held with an exclusive `flock` from `load` until destruction,
///   so a second storage on the same directory fails with `busy`.
/// - `hard_state` (29 bytes), replaced atomically (write `hard_state.tmp`, fsync,
///   rename, fsync the directory):
///   `"TRHS"`, u32 format version 1, u64 term, u8 has_vote (0 or 1), u32 voted_for
///   (0 without a vote), u64 xxh3 of the preceding 21 bytes.
/// - `snapshot`, replaced atomically like `hard_state`: `"TRSN"`, u32 version 1,
///   u64 last_index, u64 last_term, u64 size, `size` bytes of state, u64 xxh3 of
///   everything before it.
/// - `log`: a 32-byte header `"TRLG"`, u32 version 1, u64 base_index, u64 base_term,
///   u64 xxh3 of the preceding 24 bytes; then records, each
///   u32 payload size, u32 low 32 bits of xxh3 of those 4 size bytes, u64 xxh3 of the
///   payload, then the payload. The payload's first byte is its type:
///   - 1 entry: u64 term, u64 index, u8 kind (0 command, 1 noop), the command bytes
///     (the rest of the payload);
///   - 2 truncate: u64 from; drops the entries at `from` and later.
///   Entries follow each other (`index` = previous + 1, starting at base_index + 1)
///   and their terms never decrease; a truncate names an index in
///   `[base_index + 1, last + 1]`. `base_index`/`base_term` name the entry before the
///   first one (the snapshot the log was compacted to; 0/0 for a full log).
///
/// Writes: `append` and `truncate` add records with one write and one fdatasync.
/// `save_snapshot` writes `snapshot` atomically, then rewrites `log` (to
/// `log.tmp` with base = the snapshot, fsync, rename, fsync the directory). The log
/// file is created the same way (header only) on the first `load`.
///
/// Loading: missing files mean an empty state. The last record of `log` may be torn
/// by a crash mid-append: a damaged record after which no valid record follows is
/// dropped and the file is truncated before it. A damaged record followed by a valid
/// one, a bad header, a bad checksum of `hard_state` or `snapshot`, or entries that
/// do not follow each other are `corrupt`, with the file and offset in the message.
/// A snapshot newer than the log's base is reconciled as `save_snapshot` does (a
/// crash between its two steps) and the log rewritten. Leftover `*.tmp` files are
/// removed.
///
/// After a failed write every further write fails (`failed_before`) until the next
/// `load`. Not thread-safe.
class file_storage : public raft_storage {
public:
  explicit file_storage(std::string dir, file_storage_options opts = {});
  ~file_storage() override;

  file_storage(const file_storage&) = delete;
  file_storage& operator=(const file_storage&) = delete;

  storage_error load(persisted_state& out) override;
  storage_error save_hard_state(const hard_state& x) override;
  storage_error append(const std::vector<entry>& entries) override;
  storage_error truncate(log_index from) override;
  storage_error save_snapshot(const snapshot& snap) override;

  const std::string& dir() const noexcept {
    return dir_;
  }

  /// Bytes of a torn tail the last `load` dropped from `log` (0 if none).
  uint64_t dropped_tail_bytes() const noexcept {
    return dropped_tail_;
  }

private:
  void close_files();
  storage_error fail(storage_error err);
  storage_error check_writable() const;
  raft::term term_at(log_index i) const;
  storage_error write_log_records(const std::string& records);
  storage_error rewrite_log(log_index base, raft::term base_term,
                            const std::vector<entry>& entries);

  std::string dir_;
  file_storage_options opts_;
  int lock_fd_ = -1;
  int log_fd_ = -1;
  bool loaded_ = false;
  storage_error failed_;
  // What the log file holds, for checking the contract of writes.
  log_index base_index_;
  raft::term base_term_;
  log_index last_index_;
  std::vector<raft::term> terms_; // of the stored entries base_index_ + 1 ...
  uint64_t dropped_tail_ = 0;
};

/// Keeps the persisted state in memory: what a restarted `raft_node` would find on
/// disk. For tests, with fault injection in the manner of LevelDB's
/// fault-injecting environment: a write can fail without effect or, for `append`,
/// after persisting a prefix (a torn write). Not thread-safe.
class memory_storage : public raft_storage {
public:
  storage_error load(persisted_state& out) override;
  storage_error save_hard_state(const hard_state& x) override;
  storage_error append(const std::vector<entry>& entries) override;
  storage_error truncate(log_index from) override;
  storage_error save_snapshot(const snapshot& snap) override;

  // -- fault injection --------------------------------------------------------

  /// The next `n` writes fail with `injected` and change nothing.
  void fail_next_writes(size_t n = 1) {
    fail_writes_ = n;
  }

  /// The next `append` stores only its first `keep` entries (after replacing the
  /// stored suffix, as a real torn write would) and then fails with `injected`.
  void tear_next_append(size_t keep) {
    tear_keep_ = keep;
  }

  /// The next `load` fails with `corrupt`.
  void fail_next_load() {
    fail_load_ = true;
  }

  /// Disarms every fault not yet triggered.
  void clear_faults() {
    fail_writes_ = 0;
    tear_keep_.reset();
    fail_load_ = false;
  }

  // -- observers --------------------------------------------------------------

  /// What a `load` would return now.
  const persisted_state& state() const noexcept {
    return state_;
  }

  /// Successful writes so far (every kind).
  uint64_t writes() const noexcept {
    return writes_;
  }

  /// Successful `save_hard_state` calls so far.
  uint64_t hard_state_writes() const noexcept {
    return hard_state_writes_;
  }

private:
  bool injected_failure(storage_error& err);

  persisted_state state_;
  size_t fail_writes_ = 0;
  std::optional<size_t> tear_keep_;
  bool fail_load_ = false;
  uint64_t writes_ = 0;
  uint64_t hard_state_writes_ = 0;
};

} // namespace tether::directory::raft
