//! Shared sub-objects: endpoints, credentials, image properties and sampling options.

use super::model::{
    Credentials, Endpoint, ImageFormat, ImageProperties, ImageScale, SamplingOptions, ScaleMode,
    TlsOptions,
};
use super::node_type::resolve_subtype;
use super::props::Props;

/// Reads an `endpoint` object; `schemes` are the accepted URL schemes (lower case).
pub fn read_endpoint(p: &Props<'_>, schemes: &[&str]) -> Option<Endpoint> {
    let e = p.required_object("endpoint")?;
    let kind = e.required_string("@type").and_then(|t| {
        let found = resolve_subtype(&t, &["UnsecuredEndpoint", "TlsEndpoint"]);
        if found.is_none() {
            e.error(
                "@type",
                format!("'{t}' is not an endpoint type (UnsecuredEndpoint or TlsEndpoint)"),
            );
        }
        found
    });
    let url = e.required_string("url");
    if let Some(url) = &url {
        check_url(&e, url, schemes);
    }
    let credentials = e.object("credentials").and_then(|c| read_credentials(&c));
    if let Some(tunnel) = e.object("tunnel") {
        let t = tunnel.string("@type").unwrap_or_default();
        e.errors().not_supported(
            tunnel.path(),
            e.node(),
            format!("endpoint tunnel {t} (AVA cloud only)"),
        );
        tunnel.ignore(&["@type", "iotHubName", "deviceId"]);
    }
    let tls = if kind == Some("TlsEndpoint") {
        let certs = e
            .object("trustedCertificates")
            .map(|c| {
                c.ignore(&["@type"]);
                let list = c
                    .array("certificates")
                    .into_iter()
                    .filter_map(|(_, v)| v.as_str().map(str::to_string))
                    .collect();
                c.report_unknown();
                list
            })
            .unwrap_or_default();
        let validation = e.object("validationOptions");
        let flag = |name| {
            validation
                .as_ref()
                .and_then(|v| v.boolean(name))
                .unwrap_or(false)
        };
        let options = TlsOptions {
            trusted_certificates: certs,
            ignore_hostname: flag("ignoreHostname"),
            ignore_signature: flag("ignoreSignature"),
        };
        if let Some(v) = &validation {
            v.report_unknown();
        }
        Some(options)
    } else {
        None
    };
    e.report_unknown();
    Some(Endpoint {
        url: url?,
        credentials,
        tls,
    })
}

fn check_url(e: &Props<'_>, url: &str, schemes: &[&str]) {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme {
        Some(s) if schemes.contains(&s.as_str()) => {
            let rest = &url[s.len() + 3..];
            if rest.is_empty() || rest.starts_with('/') {
                e.error("url", format!("'{url}' has no host"));
            }
        }
        _ => e.error(
            "url",
            format!(
                "'{url}' is not a URL with scheme {}",
                schemes
                    .iter()
                    .map(|s| format!("{s}://"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        ),
    }
}

fn read_credentials(c: &Props<'_>) -> Option<Credentials> {
    let t = c.required_string("@type")?;
    let kind = resolve_subtype(
        &t,
        &["UsernamePasswordCredentials", "HttpHeaderCredentials"],
    );
    let credentials = match kind {
        Some("UsernamePasswordCredentials") => {
            let username = c.required_string("username");
            // An empty password is legal for some cameras.
            let password = c.string("password");
            if c.raw("password").is_none() {
                c.error("password", "required property 'password' is missing");
            }
            Some(Credentials::UsernamePassword {
                username: username?,
                password: password?,
            })
        }
        Some(_) => {
            let name = c.required_string("headerName");
            let value = c.required_string("headerValue");
            Some(Credentials::HttpHeader {
                name: name?,
                value: value?,
            })
        }
        None => {
            c.error(
                "@type",
                format!(
                    "'{t}' is not a credentials type (UsernamePasswordCredentials or HttpHeaderCredentials)"
                ),
            );
            None
        }
    };
    c.report_unknown();
    credentials
}

/// Reads an extension's `image` object.
pub fn read_image(p: &Props<'_>) -> Option<ImageProperties> {
    let image = p.required_object("image")?;
    let scale = image.object("scale").map(|s| {
        let mode = s
            .enumeration("mode", &["pad", "preserveAspectRatio", "stretch"])
            .map(|m| match m {
                "preserveAspectRatio" => ScaleMode::PreserveAspectRatio,
                "stretch" => ScaleMode::Stretch,
                _ => ScaleMode::Pad,
            })
            .unwrap_or(ScaleMode::Pad);
        let width = s.integer("width", 1, 16_384).map(|v| v as u32);
        let height = s.integer("height", 1, 16_384).map(|v| v as u32);
        if mode != ScaleMode::PreserveAspectRatio && (width.is_none() || height.is_none()) {
            s.error_here("scale modes pad and stretch need both width and height");
        }
        if mode == ScaleMode::PreserveAspectRatio && width.is_none() && height.is_none() {
            s.error_here("scale needs a width, a height, or both");
        }
        s.report_unknown();
        ImageScale {
            mode,
            width,
            height,
        }
    });
    let format = image.required_object("format").and_then(|f| {
        let t = f.required_string("@type")?;
        let kind = resolve_subtype(
            &t,
            &[
                "ImageFormatJpeg",
                "ImageFormatPng",
                "ImageFormatBmp",
                "ImageFormatRaw",
                "ImageFormatEncoded",
            ],
        );
        let format = match kind {
            Some("ImageFormatJpeg") => Some(ImageFormat::Jpeg {
                quality: f.integer("quality", 0, 100).map(|q| q as u8).unwrap_or(90),
            }),
            Some("ImageFormatPng") => Some(ImageFormat::Png),
            Some("ImageFormatBmp") => Some(ImageFormat::Bmp),
            // LVA 1.0: one type with an `encoding` property.
            Some("ImageFormatEncoded") => match f.enumeration("encoding", &["jpeg", "png", "bmp"]) {
                Some("png") => Some(ImageFormat::Png),
                Some("bmp") => Some(ImageFormat::Bmp),
                Some(_) => Some(ImageFormat::Jpeg {
                    quality: f.integer("quality", 0, 100).map(|q| q as u8).unwrap_or(90),
                }),
                None => {
                    if f.raw("encoding").is_none() {
                        f.error("encoding", "required property 'encoding' is missing");
                    }
                    None
                }
            },
            Some(_) => f
                .enumeration(
                    "pixelFormat",
                    &[
                        "yuv420p", "rgb565be", "rgb565le", "rgb555be", "rgb555le", "rgb24",
                        "bgr24", "argb", "rgba", "abgr", "bgra",
                    ],
                )
                .map(|pf| ImageFormat::Raw {
                    pixel_format: pf.to_string(),
                })
                .or_else(|| {
                    if f.raw("pixelFormat").is_none() {
                        f.error("pixelFormat", "required property 'pixelFormat' is missing");
                    }
                    None
                }),
            None => {
                f.error(
                    "@type",
                    format!(
                        "'{t}' is not an image format (ImageFormatJpeg, ImageFormatPng, ImageFormatBmp, ImageFormatRaw)"
                    ),
                );
                None
            }
        };
        f.report_unknown();
        format
    });
    image.report_unknown();
    Some(ImageProperties {
        scale,
        format: format?,
    })
}

/// Reads an extension's optional `samplingOptions` object.
pub fn read_sampling(p: &Props<'_>) -> SamplingOptions {
    let Some(s) = p.object("samplingOptions") else {
        return SamplingOptions {
            skip_samples_without_annotation: false,
            maximum_samples_per_second: None,
        };
    };
    let options = SamplingOptions {
        skip_samples_without_annotation: s.boolean("skipSamplesWithoutAnnotation").unwrap_or(false),
        maximum_samples_per_second: s.number("maximumSamplesPerSecond", 0.001, 300.0),
    };
    s.report_unknown();
    options
}
