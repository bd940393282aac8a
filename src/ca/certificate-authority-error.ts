/**
 * A problem with the certificate authority's configuration, files or a request to it. The
 * message is written for the person running the mesh: it names the file, option or field and
 * says what was expected.
 */
export class CertificateAuthorityError extends Error {
  override name = "CertificateAuthorityError";
}
