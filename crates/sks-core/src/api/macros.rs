//! The `sks_methods!` macro: from one table of §7.4 methods it generates the request and
//! response structs, the enums, their byte encodings, the typed [`super::SksApi`] functions
//! and the engine's dispatch trait, so the wire format cannot drift from the API.

macro_rules! sks_methods {
    ($(
        $(#[$mdoc:meta])*
        $id:literal $name:ident $fname:ident
        { $( $(#[$fdoc:meta])* $field:ident : $fty:ty ),* $(,)? }
        -> { $( $(#[$odoc:meta])* $ofield:ident : $oty:ty ),* $(,)? }
    ;)*) => {
        /// Request arguments, in the wire order of §7.4.
        pub mod req {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$mdoc])*
                #[derive(Debug, Default, PartialEq, Eq)]
                pub struct $name { $( $(#[$fdoc])* pub $field: $fty, )* }
            )*
        }
        /// Method outputs (after the status byte), in the wire order of §7.4.
        pub mod resp {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$mdoc])*
                #[derive(Debug, Default, PartialEq, Eq)]
                pub struct $name { $( $(#[$odoc])* pub $ofield: $oty, )* }
            )*
        }

        /// Method IDs of §7.4, named like the request types.
        #[allow(non_upper_case_globals)]
        pub mod method_id {
            $(
                $(#[$mdoc])*
                pub const $name: u8 = $id;
            )*
        }

        /// A method call: the method ID and its arguments.
        #[derive(Debug, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Request { $( $(#[$mdoc])* $name(req::$name), )* }

        /// The outputs of a successful call.
        #[derive(Debug, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Response { $( $(#[$mdoc])* $name(resp::$name), )* }

        impl Request {
            /// The §7.4 method ID.
            pub fn method_id(&self) -> u8 {
                match self { $( Request::$name(_) => $id, )* }
            }
            /// The spec's method name.
            pub fn method_name(&self) -> &'static str {
                match self { $( Request::$name(_) => stringify!($fname), )* }
            }
            /// `[method id][arguments]`; fails if an argument does not fit its length prefix.
            pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
                let mut w = Writer::new();
                match self {
                    $( Request::$name(_a) => { w.byte($id); $( _a.$field.put(&mut w); )* } )*
                }
                w.into_bytes()
            }
            /// Parses `[method id][arguments]`; never panics.
            pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
                let mut r = Reader::new(bytes);
                let id = r.byte()?;
                let req = match id {
                    $( $id => Request::$name(req::$name { $( $field: <$fty>::get(&mut r)?, )* }), )*
                    other => return Err(DecodeError::UnknownMethod(other)),
                };
                r.finish()?;
                Ok(req)
            }
        }

        impl Response {
            /// The §7.4 method ID this response answers.
            pub fn method_id(&self) -> u8 {
                match self { $( Response::$name(_) => $id, )* }
            }
            /// `[0x00][outputs]`; fails if an output does not fit its length prefix.
            pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
                let mut w = Writer::new();
                w.byte(0);
                match self {
                    $( Response::$name(_o) => { $( _o.$ofield.put(&mut w); )* } )*
                }
                w.into_bytes()
            }
            /// Parses a response to `method_id`: `\[0\][outputs]` or `[status][error string]`.
            pub fn decode(method_id: u8, bytes: &[u8]) -> Result<Result<Self, SksError>, DecodeError> {
                let mut r = Reader::new(bytes);
                let status = r.byte()?;
                if status != 0 {
                    let msg = r.string()?;
                    r.finish()?;
                    return Ok(Err(SksError::new(ErrorCode::from_status(status), msg)));
                }
                let resp = match method_id {
                    $( $id => Response::$name(resp::$name { $( $ofield: <$oty>::get(&mut r)?, )* }), )*
                    other => return Err(DecodeError::UnknownMethod(other)),
                };
                r.finish()?;
                Ok(Ok(resp))
            }
        }

        /// Anything that executes SKS calls: the local engine, a wire loopback, a TCP client.
        /// The typed functions wrap [`SksApi::call`].
        pub trait SksApi {
            /// Executes one call.
            fn call(&mut self, request: Request) -> Result<Response, SksError>;

            $(
                $(#[$mdoc])*
                fn $fname(&mut self, args: req::$name) -> Result<resp::$name, SksError> {
                    match self.call(Request::$name(args))? {
                        Response::$name(out) => Ok(out),
                        _ => Err(SksError::new(ErrorCode::Internal, "response does not match the request")),
                    }
                }
            )*
        }

        /// Every (method ID, method name) pair of §7.4.
        pub const METHODS: &[(u8, &str)] = &[ $( ($id, stringify!($fname)), )* ];

        pub(crate) trait Dispatch {
            $( fn $fname(&mut self, args: req::$name) -> Result<resp::$name, SksError>; )*
            fn dispatch(&mut self, request: Request) -> Result<Response, SksError> {
                match request {
                    $( Request::$name(a) => Dispatch::$fname(self, a).map(Response::$name), )*
                }
            }
        }
    };
}

/// A group of arguments that several methods carry in the same order: a struct whose wire
/// encoding is its fields', one after the other (§7.1), so grouping changes no byte.
macro_rules! wire_struct {
    ($(#[$doc:meta])* $name:ident { $( $(#[$fdoc:meta])* $field:ident : $fty:ty ),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Default, PartialEq, Eq)]
        pub struct $name { $( $(#[$fdoc])* pub $field: $fty, )* }

        impl WireType for $name {
            fn put(&self, w: &mut Writer) {
                $( self.$field.put(w); )*
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self { $( $field: <$fty>::get(r)?, )* })
            }
        }
    };
}
