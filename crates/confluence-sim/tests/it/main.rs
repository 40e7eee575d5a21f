//! The simulator's integration tests, in one binary so that it links once:
//! conformance to Atlassian's OpenAPI documents, the API's behaviour,
//! OAuth, faults and the rate limit, mutations, and the third-party clients.

mod api;
mod clients;
mod common;
mod conformance;
mod faults;
mod mutations;
mod oauth;
