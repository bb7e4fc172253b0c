// The one translation unit of libactors and tetherd that compiles Boost.JSON
// (header-only mode). Every other file includes <boost/json.hpp> only.
#include <boost/json/src.hpp>
