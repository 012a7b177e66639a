// Compiles Boost.URL into ward_api once (header-only mode), instead of linking libboost_url.
#include <boost/url/src.hpp>
