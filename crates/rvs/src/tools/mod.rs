//! Tools around the product: `rvs demo` (the embedded default), `rvs lab` (the seed articles' setup in namespaces), `rvs sim` (what kernel IPVS would do), `rvs genhash`.

pub mod demo;
pub mod genhash;
pub mod lab;
pub mod sim;
