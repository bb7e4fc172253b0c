// The one translation unit that compiles Boost.JSON in header-only mode for all tools.
// Every other file includes <boost/json.hpp> (or its parts) only.
#include <boost/json/src.hpp>
