# Unit tests of libactors, each beside the code it tests. tests/CMakeLists.txt builds
# them into tether_unit_tests together with catch_main.cpp.
set(TETHER_UNIT_TEST_SOURCES
  ${PROJECT_SOURCE_DIR}/libactors/keys/series_key.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/keys/slicing.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/keys/utf8.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/wire/keyed_batch.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/wire/codec.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/series/dedup_window.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/series/series_state.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/series/slice_state.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/routing/split.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/shard/shard_replication.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/replication/primary_stream.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/replication/follower_cursor.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/replication/stream_sim.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/outputs/window_order.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/outputs/stale_outputs.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/events/event_log.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/events/table_events.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/options/option_table.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/node/node_options.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/node/tls_session.test.cpp
)
