import Engine
import Foundation

extension Router {
    func archive(_ req: Request, _ res: Responder, _ id: String) async throws {
        throw APIError(501, "copying files to or from containers is not supported by berth yet")
    }
}
