"""What the participant reads, in the languages of the programme's participants.

Placeholders: ``{name}`` (given name), ``{org}`` (the organisation they meet), ``{when}`` (date
and time in Europe/Berlin, formatted for the language by Babel), ``{mode}``. German is the
fallback for any other language. Right-to-left handling is done in ``messages.render``, not here.
"""
from __future__ import annotations

from buendnis_common.vocabulary import RTL_LANGUAGES

__all__ = ["DEFAULT_LANGUAGE", "INBOX_LANGUAGES", "LANGUAGES", "RTL_LANGUAGES", "TEXTS"]

DEFAULT_LANGUAGE = "de"

TEXTS: dict[str, dict[str, str]] = {
    "de": {
        "greeting": "Hallo {name},",
        "reminder_subject": "Erinnerung: Ihr Termin am {when}",
        "reminder_body": "wir erinnern Sie an Ihren Termin bei {org}:\n{when} ({mode}).\n"
                         "Wenn Sie nicht kommen können, sagen Sie bitte rechtzeitig Bescheid.",
        "reminder_sms": "Erinnerung: Ihr Termin bei {org} am {when} ({mode}). Wenn Sie nicht "
                        "kommen können, sagen Sie bitte ab.",
        "moved_subject": "Ihr Termin wurde verschoben: {when}",
        "moved_body": "Ihr Termin bei {org} wurde verschoben.\nNeuer Termin: {when} ({mode}).",
        "moved_sms": "Ihr Termin bei {org} wurde verschoben auf {when} ({mode}).",
        "cancellation_subject": "Ihr Termin am {when} wurde abgesagt",
        "cancellation_body": "Ihr Termin bei {org} am {when} wurde abgesagt.\n"
                             "Ihre Ansprechperson meldet sich bei Ihnen.",
        "cancellation_sms": "Ihr Termin bei {org} am {when} wurde abgesagt. Ihre "
                            "Ansprechperson meldet sich bei Ihnen.",
        "summary": "Termin bei {org}",
        "footer": "Diese Nachricht wurde automatisch gesendet. Bitte antworten Sie nicht darauf.",
        "in_person": "vor Ort",
        "phone": "telefonisch",
        "video": "per Video",
        "sms_reply_hint": "Antworten Sie 1 = ich komme, 2 = ich kann nicht kommen.",
        "answer_link": "Kommen Sie? Bitte sagen Sie es uns hier: {link}",
        "ack_confirmed": "Danke! Ihr Termin ist bestätigt.",
        "ack_cancel_requested": "Danke. Wir haben weitergegeben, dass Sie nicht kommen können; "
                                "Ihre Ansprechperson meldet sich bei Ihnen.",
        "ack_stop": "Sie bekommen keine SMS mehr von uns. Mit START schalten Sie sie wieder ein.",
        "ack_start": "Sie bekommen wieder SMS-Erinnerungen.",
        "ack_unclear": "Danke. Wir haben Ihre Nachricht an Ihre Ansprechperson weitergegeben. "
                       "Antworten Sie 1 = ich komme, 2 = ich kann nicht kommen.",
        "ack_no_appointment": "Danke. Zu Ihrer Nummer haben wir keinen offenen Termin gefunden. "
                              "Bitte wenden Sie sich an Ihre Ansprechperson.",
    },
    "en": {
        "greeting": "Hello {name},",
        "reminder_subject": "Reminder: your appointment on {when}",
        "reminder_body": "This is a reminder of your appointment with {org}:\n{when} ({mode}).\n"
                         "If you cannot come, please let us know in good time.",
        "reminder_sms": "Reminder: your appointment with {org} on {when} ({mode}). Please "
                        "cancel if you cannot come.",
        "moved_subject": "Your appointment has been moved: {when}",
        "moved_body": "Your appointment with {org} has been moved.\nNew time: {when} ({mode}).",
        "moved_sms": "Your appointment with {org} has been moved to {when} ({mode}).",
        "cancellation_subject": "Your appointment on {when} has been cancelled",
        "cancellation_body": "Your appointment with {org} on {when} has been cancelled.\n"
                             "Your contact person will get in touch with you.",
        "cancellation_sms": "Your appointment with {org} on {when} has been cancelled. Your "
                            "contact person will get in touch with you.",
        "summary": "Appointment with {org}",
        "footer": "This message was sent automatically. Please do not reply.",
        "in_person": "in person",
        "phone": "by phone",
        "video": "by video",
        "sms_reply_hint": "Reply 1 = I will come, 2 = I cannot come.",
        "answer_link": "Are you coming? Please tell us here: {link}",
        "ack_confirmed": "Thank you! Your appointment is confirmed.",
        "ack_cancel_requested": "Thank you. We have passed on that you cannot come; your contact "
                                "person will get in touch with you.",
        "ack_stop": "You will get no more SMS from us. Reply START to switch them on again.",
        "ack_start": "You will get SMS reminders again.",
        "ack_unclear": "Thank you. We have passed your message on to your contact person. Reply 1 "
                       "= I will come, 2 = I cannot come.",
        "ack_no_appointment": "Thank you. We found no open appointment for your number. Please "
                              "get in touch with your contact person.",
    },
    "ar": {
        "greeting": "مرحبًا {name}،",
        "reminder_subject": "تذكير: موعدك في {when}",
        "reminder_body": "نذكّرك بموعدك لدى {org}:\n{when} ({mode}).\n"
                         "إذا لم تتمكن من الحضور، يرجى إبلاغنا في الوقت المناسب.",
        "reminder_sms": "تذكير: موعدك لدى {org} في {when} ({mode}). يرجى الإلغاء إذا لم تتمكن "
                        "من الحضور.",
        "moved_subject": "تم تغيير موعدك: {when}",
        "moved_body": "تم تغيير موعدك لدى {org}.\nالموعد الجديد: {when} ({mode}).",
        "moved_sms": "تم تغيير موعدك لدى {org} إلى {when} ({mode}).",
        "cancellation_subject": "تم إلغاء موعدك في {when}",
        "cancellation_body": "تم إلغاء موعدك لدى {org} في {when}.\n"
                             "سيتواصل معك الشخص المسؤول عنك.",
        "cancellation_sms": "تم إلغاء موعدك لدى {org} في {when}. سيتواصل معك الشخص المسؤول عنك.",
        "summary": "موعد لدى {org}",
        "footer": "تم إرسال هذه الرسالة تلقائيًا. يرجى عدم الرد عليها.",
        "in_person": "حضوريًا",
        "phone": "عبر الهاتف",
        "video": "عبر الفيديو",
        "sms_reply_hint": "أرسل 1 = سأحضر، 2 = لا أستطيع الحضور.",
        "answer_link": "هل ستحضر؟ يرجى إخبارنا هنا: {link}",
        "ack_confirmed": "شكرًا! تم تأكيد موعدك.",
        "ack_cancel_requested": "شكرًا. أبلغنا بأنك لا تستطيع الحضور؛ سيتواصل معك الشخص المسؤول "
                                "عنك.",
        "ack_stop": "لن تصلك رسائل قصيرة منا بعد الآن. أرسل START لتفعيلها من جديد.",
        "ack_start": "ستصلك رسائل التذكير القصيرة من جديد.",
        "ack_unclear": "شكرًا. أرسلنا رسالتك إلى الشخص المسؤول عنك. أرسل 1 = سأحضر، 2 = لا أستطيع "
                       "الحضور.",
        "ack_no_appointment": "شكرًا. لم نجد موعدًا مفتوحًا لرقمك. يرجى التواصل مع الشخص المسؤول "
                              "عنك.",
    },
    "fa": {
        "greeting": "سلام {name}،",
        "reminder_subject": "یادآوری: قرار ملاقات شما در {when}",
        "reminder_body": "قرار ملاقات شما با {org} را یادآوری می‌کنیم:\n{when} ({mode}).\n"
                         "اگر نمی‌توانید بیایید، لطفاً به‌موقع اطلاع دهید.",
        "reminder_sms": "یادآوری: قرار ملاقات شما با {org} در {when} ({mode}). اگر نمی‌توانید "
                        "بیایید، لطفاً آن را لغو کنید.",
        "moved_subject": "زمان قرار ملاقات شما تغییر کرد: {when}",
        "moved_body": "زمان قرار ملاقات شما با {org} تغییر کرد.\nزمان جدید: {when} ({mode}).",
        "moved_sms": "قرار ملاقات شما با {org} به {when} ({mode}) منتقل شد.",
        "cancellation_subject": "قرار ملاقات شما در {when} لغو شد",
        "cancellation_body": "قرار ملاقات شما با {org} در {when} لغو شد.\n"
                             "فرد مسئول با شما تماس خواهد گرفت.",
        "cancellation_sms": "قرار ملاقات شما با {org} در {when} لغو شد. فرد مسئول با شما تماس "
                            "خواهد گرفت.",
        "summary": "قرار ملاقات با {org}",
        "footer": "این پیام به‌طور خودکار ارسال شده است. لطفاً به آن پاسخ ندهید.",
        "in_person": "حضوری",
        "phone": "تلفنی",
        "video": "تصویری",
        "sms_reply_hint": "پاسخ دهید 1 = می\u200cآیم، 2 = نمی\u200cتوانم بیایم.",
        "answer_link": "می\u200cآیید؟ لطفاً اینجا به ما بگویید: {link}",
        "ack_confirmed": "متشکریم! وقت ملاقات شما تأیید شد.",
        "ack_cancel_requested": "متشکریم. اطلاع دادیم که نمی‌توانید بیایید؛ فرد مسئول شما با شما "
                                "تماس می‌گیرد.",
        "ack_stop": "دیگر پیامکی از ما دریافت نمی‌کنید. برای فعال‌سازی دوباره START بفرستید."
                    "دیگر پیامکی از ما دریافت نمی‌کنید. برای فعال‌سازی دوباره START بفرستید.",
        "ack_start": "دوباره یادآوری پیامکی دریافت می\u200cکنید.",
        "ack_unclear": "متشکریم. پیام شما را به فرد مسئول شما رساندیم. پاسخ دهید 1 = می‌آیم، 2 = "
                       "نمی‌توانم بیایم.",
        "ack_no_appointment": "متشکریم. برای شماره شما وقت ملاقات بازی پیدا نکردیم. لطفاً با فرد "
                              "مسئول خود تماس بگیرید.",
    },
    "uk": {
        "greeting": "Вітаємо, {name}!",
        "reminder_subject": "Нагадування: ваша зустріч {when}",
        "reminder_body": "Нагадуємо про вашу зустріч в організації {org}:\n{when} ({mode}).\n"
                         "Якщо ви не можете прийти, будь ласка, повідомте про це заздалегідь.",
        "reminder_sms": "Нагадування: ваша зустріч в організації {org} {when} ({mode}). Якщо "
                        "не можете прийти, будь ласка, скасуйте її.",
        "moved_subject": "Вашу зустріч перенесено: {when}",
        "moved_body": "Вашу зустріч в організації {org} перенесено.\n"
                      "Новий час: {when} ({mode}).",
        "moved_sms": "Вашу зустріч в організації {org} перенесено на {when} ({mode}).",
        "cancellation_subject": "Вашу зустріч {when} скасовано",
        "cancellation_body": "Вашу зустріч в організації {org} {when} скасовано.\n"
                             "Ваша контактна особа зв'яжеться з вами.",
        "cancellation_sms": "Вашу зустріч в організації {org} {when} скасовано. Ваша контактна "
                            "особа зв'яжеться з вами.",
        "summary": "Зустріч в організації {org}",
        "footer": "Це повідомлення надіслано автоматично. Будь ласка, не відповідайте на нього.",
        "in_person": "особисто",
        "phone": "телефоном",
        "video": "відеозв'язком",
        "sms_reply_hint": "Відповідайте 1 = я прийду, 2 = я не можу прийти.",
        "answer_link": "Ви прийдете? Будь ласка, повідомте нам тут: {link}",
        "ack_confirmed": "Дякуємо! Вашу зустріч підтверджено.",
        "ack_cancel_requested": "Дякуємо. Ми передали, що ви не можете прийти; ваша контактна "
                                "особа зв'яжеться з вами.",
        "ack_stop": "Ви більше не отримуватимете SMS від нас. Надішліть START, щоб увімкнути їх "
                    "знову.",
        "ack_start": "Ви знову отримуватимете SMS-нагадування.",
        "ack_unclear": "Дякуємо. Ми передали ваше повідомлення вашій контактній особі. "
                       "Відповідайте 1 = я прийду, 2 = я не можу прийти.",
        "ack_no_appointment": "Дякуємо. Для вашого номера ми не знайшли відкритої зустрічі. "
                              "Зверніться, будь ласка, до вашої контактної особи.",
    },
    "tr": {
        "greeting": "Merhaba {name},",
        "reminder_subject": "Hatırlatma: {when} tarihli randevunuz",
        "reminder_body": "{org} ile olan randevunuzu hatırlatırız:\n{when} ({mode}).\n"
                         "Gelemeyecekseniz lütfen zamanında haber verin.",
        "reminder_sms": "Hatırlatma: {org} ile {when} tarihli randevunuz ({mode}). "
                        "Gelemeyecekseniz lütfen iptal edin.",
        "moved_subject": "Randevunuz değiştirildi: {when}",
        "moved_body": "{org} ile olan randevunuz değiştirildi.\nYeni zaman: {when} ({mode}).",
        "moved_sms": "{org} ile olan randevunuz {when} ({mode}) olarak değiştirildi.",
        "cancellation_subject": "{when} tarihli randevunuz iptal edildi",
        "cancellation_body": "{org} ile {when} tarihli randevunuz iptal edildi.\n"
                             "İlgili kişi sizinle iletişime geçecek.",
        "cancellation_sms": "{org} ile {when} tarihli randevunuz iptal edildi. İlgili kişi "
                            "sizinle iletişime geçecek.",
        "summary": "{org} randevusu",
        "footer": "Bu mesaj otomatik olarak gönderilmiştir. Lütfen yanıtlamayın.",
        "in_person": "yüz yüze",
        "phone": "telefonla",
        "video": "görüntülü görüşmeyle",
        "sms_reply_hint": "Yanıtlayın: 1 = geleceğim, 2 = gelemiyorum.",
        "answer_link": "Gelecek misiniz? Lütfen bize buradan bildirin: {link}",
        "ack_confirmed": "Teşekkürler! Randevunuz onaylandı.",
        "ack_cancel_requested": "Teşekkürler. Gelemeyeceğinizi ilettik; irtibat kişiniz sizinle "
                                "iletişime geçecek.",
        "ack_stop": "Artık bizden SMS almayacaksınız. Yeniden açmak için START yazın.",
        "ack_start": "SMS hatırlatmalarını yeniden alacaksınız.",
        "ack_unclear": "Teşekkürler. Mesajınızı irtibat kişinize ilettik. Yanıtlayın: 1 = "
                       "geleceğim, 2 = gelemiyorum.",
        "ack_no_appointment": "Teşekkürler. Numaranız için açık bir randevu bulamadık. Lütfen "
                              "irtibat kişinize başvurun.",
    },
    "ru": {
        "greeting": "Здравствуйте, {name}!",
        "reminder_subject": "Напоминание: ваша встреча {when}",
        "reminder_body": "Напоминаем о вашей встрече в организации {org}:\n{when} ({mode}).\n"
                         "Если вы не сможете прийти, пожалуйста, сообщите заранее.",
        "reminder_sms": "Напоминание: ваша встреча в организации {org} {when} ({mode}). Если "
                        "не сможете прийти, пожалуйста, отмените её.",
        "moved_subject": "Ваша встреча перенесена: {when}",
        "moved_body": "Ваша встреча в организации {org} перенесена.\n"
                      "Новое время: {when} ({mode}).",
        "moved_sms": "Ваша встреча в организации {org} перенесена на {when} ({mode}).",
        "cancellation_subject": "Ваша встреча {when} отменена",
        "cancellation_body": "Ваша встреча в организации {org} {when} отменена.\n"
                             "Ваше контактное лицо свяжется с вами.",
        "cancellation_sms": "Ваша встреча в организации {org} {when} отменена. Ваше контактное "
                            "лицо свяжется с вами.",
        "summary": "Встреча в организации {org}",
        "footer": "Это сообщение отправлено автоматически. Пожалуйста, не отвечайте на него.",
        "in_person": "лично",
        "phone": "по телефону",
        "video": "по видеосвязи",
        "sms_reply_hint": "Ответьте 1 = я приду, 2 = я не смогу прийти.",
        "answer_link": "Вы придёте? Пожалуйста, сообщите нам здесь: {link}",
        "ack_confirmed": "Спасибо! Ваша встреча подтверждена.",
        "ack_cancel_requested": "Спасибо. Мы передали, что вы не сможете прийти; ваше контактное "
                                "лицо свяжется с вами.",
        "ack_stop": "Вы больше не будете получать от нас SMS. Отправьте START, чтобы снова их "
                    "включить.",
        "ack_start": "Вы снова будете получать SMS-напоминания.",
        "ack_unclear": "Спасибо. Мы передали ваше сообщение вашему контактному лицу. Ответьте 1 = "
                       "я приду, 2 = я не смогу прийти.",
        "ack_no_appointment": "Спасибо. Для вашего номера мы не нашли открытой встречи. "
                              "Пожалуйста, обратитесь к вашему контактному лицу.",
    },
}

LANGUAGES = tuple(TEXTS)

# E-mail copies of inbox entries go to the partners' staff, in German.
INBOX_TEXTS: dict[str, str] = {
    "referral.received": "Neue Vermittlung von {from_org_name} ({need}).",
    "referral.accepted": "{to_org_name} hat Ihre Vermittlung angenommen ({need}).",
    "referral.rejected": "{to_org_name} hat Ihre Vermittlung abgelehnt ({need}).",
    "referral.status_changed": "Eine Vermittlung ({need}) hat jetzt den Status „{status}“.",
    "referral.overdue": "{to_org_name} hat auf Ihre Vermittlung ({need}) noch nicht "
                        "geantwortet; die Antwortfrist ist abgelaufen.",
    "referral.message_posted": "Neue Nachricht zu einer Vermittlung ({need}).",
    "referral.consent_ended": "Die Einwilligung zu einer Vermittlung ({need}) an {to_org_name} "
                              "gilt nicht mehr ({reason}); die Angaben der Person werden nicht "
                              "mehr geteilt.",
    "appointment.booked": "Ein Termin wurde gebucht: {when}.",
    "appointment.moved": "Ein Termin wurde verschoben auf {when}.",
    "appointment.cancelled": "Ein Termin am {when} wurde abgesagt.",
    "appointment.reminder": "Erinnerung: Termin am {when} ({need}).",
    "reminder.failed": "Eine Terminerinnerung an die teilnehmende Person konnte nicht "
                       "zugestellt werden (Termin am {when}). Bitte informieren Sie sie selbst.",
    "reminder.unconfirmed": "Eine Terminerinnerung an die teilnehmende Person ist vielleicht "
                            "nicht angekommen: Der Mailserver hat den Empfang nicht bestätigt "
                            "(Termin am {when}). Fragen Sie im Zweifel nach.",
    "answer.confirmed": "Die teilnehmende Person hat den Termin am {when} bestätigt ({channel}).",
    "answer.cancel_requested": "Die teilnehmende Person bittet, den Termin am {when} abzusagen "
                               "({channel}). Die aufnehmende Stelle entscheidet und sagt den "
                               "Termin ab, damit er frei wird.",
    "answer.unclear": "Die teilnehmende Person hat auf die Erinnerung an den Termin am {when} "
                      "unklar geantwortet (SMS). Bitte fragen Sie bei ihr nach.",
    "answer.sms_stopped": "Die teilnehmende Person möchte keine SMS mehr (STOP); Erinnerungen "
                          "an den Termin am {when} gehen nicht mehr per SMS. Bitte vereinbaren "
                          "Sie einen anderen Weg.",
}

# The same entries in English, for staff whose pages are in English (Accept-Language).
INBOX_TEXTS_EN: dict[str, str] = {
    "referral.received": "New referral from {from_org_name} ({need}).",
    "referral.accepted": "{to_org_name} accepted your referral ({need}).",
    "referral.rejected": "{to_org_name} declined your referral ({need}).",
    "referral.status_changed": "A referral ({need}) is now “{status}”.",
    "referral.overdue": "{to_org_name} has not answered your referral ({need}); the response "
                        "time is over.",
    "referral.message_posted": "New message on a referral ({need}).",
    "referral.consent_ended": "The consent for a referral ({need}) to {to_org_name} no longer "
                              "holds ({reason}); the person's data is no longer shared.",
    "appointment.booked": "An appointment was booked: {when}.",
    "appointment.moved": "An appointment was moved to {when}.",
    "appointment.cancelled": "The appointment on {when} was cancelled.",
    "appointment.reminder": "Reminder: appointment on {when} ({need}).",
    "reminder.failed": "A reminder to the participant could not be delivered (appointment on "
                       "{when}). Please tell them yourself.",
    "reminder.unconfirmed": "A reminder to the participant may not have arrived: the mail "
                            "server did not confirm it (appointment on {when}). If in doubt, "
                            "check with them.",
    "answer.confirmed": "The participant confirmed the appointment on {when} ({channel}).",
    "answer.cancel_requested": "The participant asks to cancel the appointment on {when} "
                               "({channel}). The receiving organisation decides and cancels "
                               "it, which frees the slot.",
    "answer.unclear": "The participant's answer to the reminder of the appointment on {when} "
                      "was unclear (SMS). Please check with them.",
    "answer.sms_stopped": "The participant wants no more SMS (STOP); reminders of the "
                          "appointment on {when} no longer go by SMS. Please agree another way.",
}
INBOX_LANGUAGES = {"de": INBOX_TEXTS, "en": INBOX_TEXTS_EN}

