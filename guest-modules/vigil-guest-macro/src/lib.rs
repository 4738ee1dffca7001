//! The export macros of `vigil-guest`: each generates the bindings of one `vigil:filter@0.2.0`
//! world in the guest's crate (from the WIT embedded here, so the guest needs no path to it) and
//! exports the guest's type as that world's `filter` resource. Use them through `vigil-guest`.

use proc_macro::TokenStream;

/// The contract, embedded when this macro crate is built.
const WIT: &str = include_str!("../../../wit/0.2/filter.wit");

/// `export_frame_filter!(MyFilter)`: exports `MyFilter` (a `vigil_guest::FrameFilter`) as the
/// component's frame filter.
#[proc_macro]
pub fn export_frame_filter(input: TokenStream) -> TokenStream {
    export(
        input,
        "frame-filter",
        "frame_processor",
        "FrameFilter",
        r#"
        fn frame_request(&self) -> ::vigil_guest::types::FrameRequest {
            ::vigil_guest::FrameFilter::frame_request(&*self.get())
        }
        fn process_frame(&self, frame: ::vigil_guest::types::Frame) -> ::std::vec::Vec<::vigil_guest::types::Inference> {
            ::vigil_guest::FrameFilter::process_frame(&mut *self.get_mut(), &frame)
        }"#,
    )
}

/// `export_event_filter!(MyFilter)`: exports `MyFilter` (a `vigil_guest::EventFilter`) as the
/// component's event filter.
#[proc_macro]
pub fn export_event_filter(input: TokenStream) -> TokenStream {
    export(
        input,
        "event-filter",
        "event_processor",
        "EventFilter",
        r#"
        fn process_event(&self, event: ::vigil_guest::types::Event) -> ::std::vec::Vec<::vigil_guest::types::Event> {
            ::vigil_guest::EventFilter::process_event(&mut *self.get_mut(), event)
        }"#,
    )
}

fn export(
    input: TokenStream,
    world: &str,
    interface: &str,
    user_trait: &str,
    methods: &str,
) -> TokenStream {
    let ty = input.to_string();
    if ty.trim().is_empty() {
        return r#"compile_error!("name the type to export, e.g. export_frame_filter!(MyFilter)");"#
            .parse()
            .unwrap_or_default();
    }
    let code = format!(
        r#"
#[doc(hidden)]
#[allow(clippy::all, unused, missing_docs)]
mod __vigil_guest_export {{
    use super::*;
    ::vigil_guest::__private::wit_bindgen::generate!({{
        inline: {WIT:?},
        world: "{world}",
        runtime_path: "::vigil_guest::__private::wit_bindgen::rt",
        with: {{
            "vigil:filter/types@0.2.0": ::vigil_guest::types,
            "vigil:filter/host@0.2.0": ::vigil_guest::host,
        }},
    }});

    type Instance = ::vigil_guest::__private::Instance<{ty}>;

    pub struct Component;

    impl exports::vigil::filter::{interface}::Guest for Component {{
        type Filter = Instance;
    }}

    impl exports::vigil::filter::{interface}::GuestFilter for Instance {{
        fn create(config: ::vigil_guest::types::Config) -> ::std::result::Result<exports::vigil::filter::{interface}::Filter, ::std::string::String> {{
            let settings = ::vigil_guest::Settings::new(config);
            <{ty} as ::vigil_guest::{user_trait}>::new(&settings)
                .map(|filter| exports::vigil::filter::{interface}::Filter::new(Instance::new(filter)))
        }}
        {methods}
    }}

    export!(Component);
}}
"#
    );
    code.parse().unwrap_or_else(|_| {
        r#"compile_error!("vigil-guest: the export macro produced invalid code");"#
            .parse()
            .unwrap_or_default()
    })
}
