//! Tools around the product: `rvs demo` (the embedded default), `rvs lab` (the seed articles' setup in namespaces), `rvs sim` (what kernel IPVS would do), `rvs genhash`, `rvs manpages` and `rvs completions`.

pub mod cluster;
pub mod demo;
pub mod docs;
pub mod genhash;
pub mod lab;
pub mod sim;
