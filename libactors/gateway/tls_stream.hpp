#pragma once

#include <boost/beast/core/tcp_stream.hpp>

namespace boost::beast {
template <class NextLayer>
class ssl_stream;
}

namespace tether::gateway {

/// The byte stream of a gateway connection on a plain port.
using plain_stream = boost::beast::tcp_stream;

/// The byte stream of a gateway connection on a TLS port. Declared only: the code
/// that reads and writes it includes <boost/beast/ssl.hpp> in its source file, so
/// that the OpenSSL templates stay out of the headers.
using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

} // namespace tether::gateway
