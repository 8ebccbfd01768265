//! rxc's SQL engine core, shared by the datanode and the coordinator: errors with SQLSTATEs,
//! values and types, the parser wrapper, and the binder/planner/executor.

pub mod binder;
pub mod catalog;
pub mod copy;
pub mod ddl;
pub mod error;
pub mod exec;
pub mod expr;
pub mod fold;
pub mod functions;
pub mod index_scan;
pub mod indexes;
pub mod join_order;
pub mod optimizer;
pub mod parse_cache;
pub mod parser;
pub mod plan;
pub mod roles;
pub mod scan_cache;
pub mod value;

pub use error::{sqlstate, Result, SqlError};
pub use value::{DataType, Value};
