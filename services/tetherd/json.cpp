// Boost.JSON compiled into the gateway once (header-only mode).
#include <boost/json/src.hpp>
